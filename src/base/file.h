/*
 * Small file-system helpers shared by modules that keep private files.
 */
#ifndef MOAT_BASE_FILE_H
#define MOAT_BASE_FILE_H

/*
 * Creates the regular file <path> empty with mode 0600 when it does not
 * exist (not following a symbolic link), so that a library opening it
 * afterwards (SQLite) does not create it with the umask's mode. An existing
 * file is left alone and never opened: closing any descriptor of a file
 * drops every POSIX lock this process holds on it, including those of a
 * database handle already open on it. Returns 0, or -1 with errno set.
 */
int file_create_private(const char *path);

#endif
