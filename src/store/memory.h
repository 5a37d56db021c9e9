/* Internal: extras of the in-memory store that are not part of the store vtable. */
#ifndef CK_STORE_MEMORY_H
#define CK_STORE_MEMORY_H

#include <chatkit/json.h>
#include <chatkit/mem.h>
#include <chatkit/store.h>

/** Dumps everything a memory store holds, for every user, as the conformance cases'
 * "store_after" object: {"threads":[...oldest first],"items":{"<thread id>":[...in store
 * order]},"attachments":[...in first-saved order]}. Trees are allocated from `a`. Returns
 * CK_OK, CK_ENOMEM, or CK_EINVAL when `s` is not a memory store. */
int ck__store_memory_dump(ck_store *s, ck_arena *a, ck_json **out);

#endif
