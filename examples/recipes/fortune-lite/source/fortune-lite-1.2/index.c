/* SPDX-License-Identifier: MPL-2.0 */
/* Rebuild /usr/share/fortune-lite/index from every cookies/*.txt file. Linked statically: moss
 * runs it as a transaction trigger inside the new /usr, which may have no C library. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIR_COOKIES "/usr/share/fortune-lite/cookies"
#define INDEX "/usr/share/fortune-lite/index"

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(void)
{
	struct dirent **names;
	char path[4096], line[1024];
	long lines = 0;
	int count = scandir(DIR_COOKIES, &names, NULL, by_name);
	FILE *out = fopen(INDEX ".new", "w");
	if (count < 0 || !out) {
		perror("fortune-lite-index");
		return 1;
	}
	for (int i = 0; i < count; i++) {
		size_t length = strlen(names[i]->d_name);
		if (length > 4 && strcmp(names[i]->d_name + length - 4, ".txt") == 0) {
			snprintf(path, sizeof path, "%s/%s", DIR_COOKIES, names[i]->d_name);
			FILE *in = fopen(path, "r");
			while (in && fgets(line, sizeof line, in)) {
				if (line[0] != '\n') {
					fputs(line, out);
					lines++;
				}
			}
			if (in)
				fclose(in);
		}
		free(names[i]);
	}
	free(names);
	if (fclose(out) != 0 || rename(INDEX ".new", INDEX) != 0) {
		perror("fortune-lite-index");
		return 1;
	}
	printf("fortune-lite-index: %ld fortunes\n", lines);
	return 0;
}
