/* SPDX-License-Identifier: MPL-2.0 */
#include <stdio.h>
#include <string.h>
#include <greet.h>

int main(int argc, char **argv)
{
	char buffer[256];
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("greet (libgreet %s)\n", greet_version());
		return 0;
	}
	greet_format(buffer, sizeof buffer, argc > 1 ? argv[1] : NULL);
	puts(buffer);
	return 0;
}
