/* The shared store suite: the behaviour every ck_store backend must have.
 *
 * A backend's test program calls ck_test_store_suite once with a function that opens a fresh,
 * empty store; the suite runs every case as one cmocka group (each case gets its own store),
 * so memory, SQLite and PostgreSQL are held to exactly the same contract (chatkit/store.h and
 * the "Test store" section of the conformance README).
 */
#ifndef CK_TEST_STORE_SUITE_H
#define CK_TEST_STORE_SUITE_H

#include <chatkit/store.h>

/** Runs the store suite as the cmocka group "store/<backend_name>". `open_fresh(ud)` returns
 * a new empty store (NULL fails the case); `cleanup(ud)`, when not NULL, runs after each
 * case's store was freed, to remove what open_fresh created. Returns the number of failed
 * cases (0 when all passed), like cmocka_run_group_tests. */
int ck_test_store_suite(const char *backend_name, ck_store *(*open_fresh)(void *ud),
                        void (*cleanup)(void *ud), void *ud);

#endif
