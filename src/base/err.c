/*
 * Text for Moat's error codes (include/moat/error.h).
 */
#include <moat/error.h>

const char *moat_strerror(int err)
{
	switch (err) {
	case MOAT_OK: return "success";
	case MOAT_E_NOMEM: return "out of memory";
	case MOAT_E_AGAIN: return "try again";
	case MOAT_E_MALFORMED: return "malformed packet";
	case MOAT_E_PROTOCOL: return "protocol error";
	case MOAT_E_LIMIT: return "over a configured limit";
	case MOAT_E_BAD_UTF8: return "invalid UTF-8 string";
	case MOAT_E_DENIED: return "not authorized";
	case MOAT_E_IO: return "input/output error";
	case MOAT_E_CRYPTO: return "cryptographic failure";
	case MOAT_E_CONFIG: return "configuration error";
	case MOAT_E_INVAL: return "invalid argument";
	case MOAT_E_CLOSED: return "connection closed";
	case MOAT_E_TIMEOUT: return "timed out";
	case MOAT_E_NOTFOUND: return "not found";
	case MOAT_E_UNSUPPORTED: return "not supported";
	case MOAT_E_PAYLOAD_FORMAT: return "payload is not the UTF-8 its format indicator says";
	case MOAT_E_PARSE: return "damaged or unreadable file";
	}
	return "unknown error";
}
