/* util/git_commit.h - the git commit this build was made from ("unknown"
 * outside a git checkout); "-dirty" when the tree had uncommitted changes. */
#ifndef KILN_UTIL_GIT_COMMIT_H
#define KILN_UTIL_GIT_COMMIT_H

extern const char kiln_git_commit[];

#endif
