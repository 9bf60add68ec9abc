/*
 * Moat's one error space, shared by libmoat and every internal module.
 * Zero is success and every error is negative. MQTT reason codes are a
 * different type (enum mqtt_rc in the codec) and never share a variable
 * with these.
 */
#ifndef MOAT_ERROR_H
#define MOAT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum moat_err {
	MOAT_OK = 0,
	MOAT_E_NOMEM = -1,
	MOAT_E_AGAIN = -2,	/* need more input, or would block */
	MOAT_E_MALFORMED = -3,	/* peer bytes break the spec */
	MOAT_E_PROTOCOL = -4,	/* well-formed, but not allowed here */
	MOAT_E_LIMIT = -5,	/* over a configured limit */
	MOAT_E_BAD_UTF8 = -6,	/* a string is not MQTT-valid UTF-8 */
	MOAT_E_DENIED = -7,	/* authentication or authorization refused */
	MOAT_E_IO = -8,		/* an operating-system call failed (see errno) */
	MOAT_E_CRYPTO = -9,	/* a cryptographic check or operation failed */
	MOAT_E_CONFIG = -10,	/* a configuration value is wrong */
	MOAT_E_INVAL = -11,	/* a caller passed an argument outside the contract */
	MOAT_E_CLOSED = -12,	/* the connection is closed or not yet open */
	MOAT_E_TIMEOUT = -13,	/* a deadline passed */
	MOAT_E_NOTFOUND = -14,	/* the named thing does not exist */
	MOAT_E_UNSUPPORTED = -15, /* valid, but not implemented or not offered */
	MOAT_E_PAYLOAD_FORMAT = -16, /* payload marked UTF-8 (format indicator 1) is not */
	MOAT_E_PARSE = -17,	/* a file (e.g. the store) is damaged or not in its format */
};

/* Returns a short, static English description of <err>; never NULL. */
const char *moat_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
