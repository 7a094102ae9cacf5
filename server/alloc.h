/* alloc.h - cJSON allocation hooks with a per-thread cache of small blocks. */
#ifndef SRV_ALLOC_H
#define SRV_ALLOC_H

/* Route cJSON's allocations through a per-thread cache of 64-byte blocks
 * (a request tree is thousands of nodes; glibc's consolidation of that many
 * freed chunks costs more than parsing them). Every block is a real malloc
 * block, so free() on cJSON memory stays valid. Call once, before any cJSON
 * use and before threads start. Under AddressSanitizer it installs nothing,
 * so the sanitizer sees every allocation. */
void srv_alloc_install(void);
/* Free the calling thread's cache (worker threads do it at thread exit). */
void srv_alloc_thread_release(void);

#endif
