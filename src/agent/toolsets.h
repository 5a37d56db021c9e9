/* Internal: the MCP servers whose tools an agent offers, kept current (toolsets.c).
 *
 * An agent's MCP tools come from a server's tool list, which the server may change while the
 * process runs (it then sends notifications/tools/list_changed). Each (agent, server) pair is a
 * source holding the current tool set. A turn takes a reference to the current sets of its
 * agent; when a source sees that its server announced a change, it lists the tools again on
 * a worker (listing may block) and swaps the new set in on the loop thread, so later turns use
 * it while turns in flight keep the set they started with. */
#ifndef CK_AGENT_TOOLSETS_H
#define CK_AGENT_TOOLSETS_H

#include <chatkit/agent.h>
#include <chatkit/service.h>

#include <stddef.h>

typedef struct ck__toolset ck__toolset;
typedef struct ck__source ck__source;

/** Creates a source for each of `def`'s MCP servers and lists their tools now (this blocks).
 * Returns CK_OK with `*out` (an array of def->nmcp, NULL when there are none), CK_ENOMEM, or
 * the error of listing a server's tools. */
int ck__sources_new(const ck_agent_def *def, ck__source ***out);

/** Frees the sources of an agent (`n` of them). A refresh still running on a worker finishes
 * and then frees its source. Loop thread. */
void ck__sources_free(ck__source **src, size_t n);

/** Takes a reference to the current set of each of the `n` sources into `out`, and starts a
 * refresh on a worker of `svc` for each source whose server announced a change since its set
 * was listed. Loop thread. */
void ck__sources_snapshot(ck__source **src, size_t n, ck_service *svc, ck__toolset **out);

/** The tools of a set (valid while the reference is held). */
const ck_tool_def *ck__toolset_defs(const ck__toolset *t, size_t *n);

/** Drops a reference taken by ck__sources_snapshot. NULL is a no-op. Any thread. */
void ck__toolset_release(ck__toolset *t);

#endif
