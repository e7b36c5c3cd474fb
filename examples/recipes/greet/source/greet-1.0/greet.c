/* SPDX-License-Identifier: MPL-2.0 */
#include <stdio.h>
#include "greet.h"

int greet_format(char *buffer, unsigned long size, const char *name)
{
	return snprintf(buffer, size, "Hello, %s, from libgreet!", name ? name : "world");
}

const char *greet_version(void)
{
	return "1.0.0";
}
