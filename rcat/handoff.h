/*
 * handoff.h - rcat handoff send|receive: a directory handed over as
 * Checked FTP does it (docs/HANDOFF.md), run again and again from cron.
 */
#ifndef RCAT_HANDOFF_H
#define RCAT_HANDOFF_H

/* argv[1] is "handoff"; returns rcat's exit code. */
int handoff_main(int argc, char **argv);

#endif
