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

/** Two handles on one empty database, as two server processes would have (SQLite, PostgreSQL):
 * what one writes the other reads; both then add 100 items to one thread at the same time and
 * none is lost (201 items, read back with an INT_MAX limit, which must not overflow); a thread
 * deleted through one is gone through the other. Leaves the database without thread "thr_1";
 * the caller checks its backend's own tables. Fails the current cmocka test. */
void ck_test_store_two_handles(ck_store *s1, ck_store *s2);

#endif
