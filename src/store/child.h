/*
 * Running an LMDB reader in a forked child that reports through a pipe
 * (internal to src/store): LMDB aborts or crashes on a damaged page, and
 * that must end the child, not moatd. Used by check.c and salvage.c.
 */
#ifndef MOAT_STORE_CHILD_H
#define MOAT_STORE_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Forks a child that runs <fn>(<wfd>, <arg>) and then _exits(0) (the child
 * _exits(1) itself when a write fails). Returns MOAT_OK with the child's
 * <pid> and the pipe's read end in <rfd>, or MOAT_E_IO. */
int store_child_start(void (*fn)(int wfd, void *arg), void *arg, pid_t *pid, int *rfd);

/* Reaps <pid>; returns its wait status. */
int store_child_wait(pid_t pid);

/* Writes all <len> bytes to <fd> (in the child). */
bool store_child_write(int fd, const void *p, size_t len);

/* Writes a 2-byte length (at most <max>) and that many bytes of <p>. */
bool store_child_write_text(int fd, const void *p, size_t len, size_t max);

/* The parent's side of the stream: takes <len> bytes from [*p, end). */
bool store_child_take(const uint8_t **p, const uint8_t *end, void *out, size_t len);

/* Takes a 2-byte length and that many bytes, as a view. */
bool store_child_take_text(const uint8_t **p, const uint8_t *end, const uint8_t **text,
			   size_t *len);

#endif
