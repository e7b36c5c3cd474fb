/* SPDX-License-Identifier: MPL-2.0 */
/* Print one line of the fortune index, chosen by the time of day. */
#include <stdio.h>
#include <time.h>

#define INDEX "/usr/share/fortune-lite/index"

int main(void)
{
	char line[1024];
	long count = 0, pick;
	FILE *index = fopen(INDEX, "r");
	if (!index) {
		fprintf(stderr, "fortune-lite: no index at %s (did the trigger run?)\n", INDEX);
		return 1;
	}
	while (fgets(line, sizeof line, index))
		count++;
	if (count == 0)
		return 1;
	pick = (long)(time(NULL) % count);
	rewind(index);
	for (long i = 0; fgets(line, sizeof line, index); i++) {
		if (i == pick) {
			fputs(line, stdout);
			break;
		}
	}
	fclose(index);
	return 0;
}
