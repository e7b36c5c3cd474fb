/* SPDX-License-Identifier: MPL-2.0 */
#ifndef GREET_H
#define GREET_H

/* Write a greeting for `name` into `buffer` (at most `size` bytes, NUL terminated).
 * Returns the length the full greeting needs, like snprintf. */
int greet_format(char *buffer, unsigned long size, const char *name);

/* The library version, "MAJOR.MINOR.PATCH". */
const char *greet_version(void);

#endif
