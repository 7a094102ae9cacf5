/* console.h - the web console's files, embedded at build time (console_assets.c, generated). */
#ifndef SRV_CONSOLE_H
#define SRV_CONSOLE_H

#include <stddef.h>

typedef struct {
    const char *path; /* "/" for index.html, else "/console.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} srv_asset;

/* Terminated by an entry with path NULL. */
extern const srv_asset srv_console_assets[];

/* What the console's pages may load: this origin only (images also as
 * data: and blob: URLs), no inline script or style, no framing. */
#define SRV_CONSOLE_CSP                                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "        \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#endif
