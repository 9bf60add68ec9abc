/*
 * A sender's sequence counter (the COSE partial IV) that never repeats, not
 * even across a crash or reboot: numbers are reserved in blocks of K, and the
 * end of the block is written and fsynced to a small state file before any
 * number of the block is handed out (RFC 8613 Appendix B.1.1). After a
 * restart the counter resumes at the stored boundary, skipping at most K-1
 * unused numbers. One file per (group, epoch, sender id); if it is lost the
 * sender must get a new sender id or epoch before sending again, so opening
 * never silently starts a used context at zero.
 */
#ifndef MOAT_E2E_SEQ_H
#define MOAT_E2E_SEQ_H

#include <stdbool.h>
#include <stdint.h>

struct seq_counter {
	char *path;	/* the state file (owned) */
	uint64_t next;	/* the next number to hand out */
	uint64_t limit; /* first number not reserved on disk */
	uint32_t block; /* K: numbers reserved per write */
};

/*
 * Opens the counter stored at <path> with reservation block <block> (>= 1).
 * With <create>, the file must not exist: it is created and the counter
 * starts at 0 (a new sender id or epoch). Without, the file must exist and
 * the counter resumes at its stored boundary. Returns MOAT_OK;
 * MOAT_E_IO (errno set; EEXIST or ENOENT for the two cases above);
 * MOAT_E_PARSE for a damaged file; MOAT_E_INVAL; MOAT_E_NOMEM.
 */
int seq_open(struct seq_counter *s, const char *path, uint32_t block, bool create);

/*
 * Hands out the next number in <seq>, first persisting a new block
 * boundary when the reserved one is used up. Returns MOAT_OK; MOAT_E_LIMIT
 * once E2E_SEQ_MAX was handed out (get a new sender id or epoch); MOAT_E_IO
 * when the boundary could not be made durable (nothing is handed out).
 */
int seq_next(struct seq_counter *s, uint64_t *seq);

/* Frees <s>. The file keeps the boundary: the unused rest of the block is skipped. NULL path is
 * fine. */
void seq_close(struct seq_counter *s);

#endif
