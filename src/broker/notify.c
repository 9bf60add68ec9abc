/*
 * sd_notify by hand (see notify.h): the protocol is one sendto() of the
 * state text on a datagram socket; nothing is read back.
 */
#include "broker/notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <moat/error.h>

int notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	socklen_t salen;
	ssize_t sent;
	int fd;

	if (name == NULL || name[0] == '\0')
		return MOAT_OK;
	len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || len < 2 || len > sizeof(sa.sun_path) - 1)
		return MOAT_E_CONFIG;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] =
		    '\0'; /* abstract: the name is the bytes after the NUL, no terminator */
	salen =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '@' ? 0 : 1));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MOAT_E_IO;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	close(fd);
	return sent == (ssize_t)strlen(state) ? MOAT_OK : MOAT_E_IO;
}
