/* A stand-in for the programs triggers run, built static at test time (the trigger container
 * holds nothing but the state's /usr). Every call appends its argv to
 * /usr/share/moss-test/calls. `--fail` makes it fail loudly. Called as `probe` it describes the
 * container it runs in; as `systemd-sysusers` and `systemd-tmpfiles` it does the small part of
 * their work the stateless tests need (users, groups, directories, copied defaults, links). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *base(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void record(int argc, char **argv) {
    mkdir("/usr/share/moss-test", 0755);
    FILE *log = fopen("/usr/share/moss-test/calls", "a");
    if (!log) return;
    for (int i = 0; i < argc; i++) fprintf(log, "%s%s", i ? " " : "", argv[i]);
    fputc('\n', log);
    fclose(log);
}

static int contains_line_prefix(const char *file, const char *prefix) {
    FILE *f = fopen(file, "r");
    char line[1024];
    int found = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, prefix, strlen(prefix)) == 0) found = 1;
    fclose(f);
    return found;
}

static void append(const char *file, const char *text) {
    FILE *f = fopen(file, "a");
    if (!f) { perror(file); exit(4); }
    fputs(text, f);
    fclose(f);
}

typedef void (*line_handler)(char **fields, int count);

static void each_line(const char *directory, line_handler handler) {
    struct dirent **names;
    int n = scandir(directory, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t length = strlen(name);
        if (length > 5 && strcmp(name + length - 5, ".conf") == 0) {
            char path[4096], line[1024];
            snprintf(path, sizeof path, "%s/%s", directory, name);
            FILE *f = fopen(path, "r");
            while (f && fgets(line, sizeof line, f)) {
                char *fields[8];
                int count = 0;
                for (char *token = strtok(line, " \t\n"); token && count < 8; token = strtok(NULL, " \t\n"))
                    fields[count++] = token;
                if (count > 0 && fields[0][0] != '#') handler(fields, count);
            }
            if (f) fclose(f);
        }
        free(names[i]);
    }
    if (n > 0) free(names);
}

static void sysusers_line(char **f, int count) {
    char prefix[256], text[1024];
    if (count < 3) return;
    snprintf(prefix, sizeof prefix, "%s:", f[1]);
    if (f[0][0] == 'g' && !contains_line_prefix("/etc/group", prefix)) {
        snprintf(text, sizeof text, "%s:x:%s:\n", f[1], f[2]);
        append("/etc/group", text);
    } else if (f[0][0] == 'u') {
        if (!contains_line_prefix("/etc/group", prefix)) {
            snprintf(text, sizeof text, "%s:x:%s:\n", f[1], f[2]);
            append("/etc/group", text);
        }
        if (!contains_line_prefix("/etc/passwd", prefix)) {
            snprintf(text, sizeof text, "%s:x:%s:%s:%s:%s:/usr/bin/nologin\n", f[1], f[2], f[2],
                     count > 3 ? f[3] : "", count > 4 ? f[4] : "/");
            append("/etc/passwd", text);
        }
    }
}

static void mkdirs(const char *path, mode_t mode) {
    char buffer[4096];
    snprintf(buffer, sizeof buffer, "%s", path);
    for (char *p = buffer + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(buffer, 0755); *p = '/'; }
    mkdir(buffer, mode);
    chmod(buffer, mode);
}

static void tmpfiles_line(char **f, int count) {
    if (count < 2) return;
    if (f[0][0] == 'd') {
        mkdirs(f[1], count > 2 ? (mode_t)strtol(f[2], NULL, 8) : 0755);
    } else if (f[0][0] == 'C' && count > 6 && access(f[1], F_OK) != 0) {
        char buffer[65536];
        int in = open(f[6], O_RDONLY), out;
        ssize_t got;
        if (in < 0) { perror(f[6]); exit(5); }
        out = open(f[1], O_WRONLY | O_CREAT | O_EXCL, 0644);
        while (out >= 0 && (got = read(in, buffer, sizeof buffer)) > 0) write(out, buffer, got);
        close(in);
        if (out >= 0) close(out);
    } else if (f[0][0] == 'L' && count > 6) {
        symlink(f[6], f[1]);
    }
}

static void probe(void) {
    char text[8192], hostname[256] = "";
    int used = 0;
    gethostname(hostname, sizeof hostname);
    used += snprintf(text + used, sizeof text - used, "pid %d\nhostname %s\n", (int)getpid(), hostname);
    const char *kinds[] = {"mnt", "pid", "ipc", "uts", "net"};
    for (int i = 0; i < 5; i++) {
        char path[64], target[256] = "";
        snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[i]);
        ssize_t length = readlink(path, target, sizeof target - 1);
        if (length > 0) target[length] = 0;
        used += snprintf(text + used, sizeof text - used, "ns %s\n", target);
    }
    struct dirent **names;
    int n = scandir("/", &names, NULL, alphasort);
    used += snprintf(text + used, sizeof text - used, "root");
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.')
            used += snprintf(text + used, sizeof text - used, " %s", names[i]->d_name);
        free(names[i]);
    }
    used += snprintf(text + used, sizeof text - used, "\netc");
    n = scandir("/etc", &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.')
            used += snprintf(text + used, sizeof text - used, " %s", names[i]->d_name);
        free(names[i]);
    }
    used += snprintf(text + used, sizeof text - used, "\nnet");
    FILE *dev = fopen("/proc/net/dev", "r");
    char line[512];
    while (dev && fgets(line, sizeof line, dev)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        char *name = line;
        while (*name == ' ') name++;
        used += snprintf(text + used, sizeof text - used, " %s", name);
    }
    if (dev) fclose(dev);
    used += snprintf(text + used, sizeof text - used, "\nenv");
    extern char **environ;
    for (char **e = environ; *e; e++) used += snprintf(text + used, sizeof text - used, " %s", *e);
    used += snprintf(text + used, sizeof text - used, "\n");
    int out = open("/usr/share/moss-test/probe", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) { write(out, text, used); close(out); }
}

int main(int argc, char **argv) {
    record(argc, argv);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--fail") == 0) {
            printf("%s: failing on purpose\n", base(argv[0]));
            fprintf(stderr, "boom from %s\n", base(argv[0]));
            return 3;
        }
    const char *name = base(argv[0]);
    if (strcmp(name, "probe") == 0) probe();
    if (strcmp(name, "systemd-sysusers") == 0) each_line("/usr/lib/sysusers.d", sysusers_line);
    if (strcmp(name, "systemd-tmpfiles") == 0) each_line("/usr/lib/tmpfiles.d", tmpfiles_line);
    return 0;
}
