/* xenfab lab: a host's tool, as the interpreter of its one-line script (#!.../labtool).
 *
 * The kernel runs it as `labtool LAB/hosts/HOST/bin/TOOL ARGS...`. It asks the lab's emulator
 * server (LAB/bin/labtool.conf: port, token, python, emulator; owner-only) exactly as the bash
 * wrapper does: TOKEN\0 ARGC\0 HOST\0 TOOL\0 ARG\0..., then replays the frames "<fd> <n>\n<data>"
 * on stdout or stderr until "x <rc>\n". When the server does not answer it runs the emulator as a
 * command. It exists because a round of reads runs one tool per host, and bash's start-up was
 * most of a tool's cost on the lab's shared cores; the output is the same byte for byte.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char buf[65536];
static size_t have, pos;

static int next_byte(int s) {
    if (pos == have) {
        ssize_t r;
        do r = read(s, buf, sizeof buf); while (r < 0 && errno == EINTR);
        if (r <= 0) return -1;
        have = (size_t)r;
        pos = 0;
    }
    return (unsigned char)buf[pos++];
}

static int line(int s, char *out, size_t cap) {
    size_t n = 0;
    for (;;) {
        int c = next_byte(s);
        if (c < 0) return -1;
        if (c == '\n') break;
        if (n + 1 < cap) out[n++] = (char)c;
    }
    out[n] = 0;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *script = argv[1];
    const char *mark = strstr(script, "/hosts/");
    const char *last = mark;
    while (last && (mark = strstr(last + 1, "/hosts/"))) last = mark;
    if (!last) {
        fprintf(stderr, "labtool: not a lab host's tool: %s\n", script);
        return 127;
    }
    char lab[4096], host[256], tool[256], conf[4200];
    size_t lablen = (size_t)(last - script);
    const char *h = last + 7, *slash = strchr(h, '/');
    if (lablen >= sizeof lab || !slash || (size_t)(slash - h) >= sizeof host ||
        strncmp(slash, "/bin/", 5) != 0 || strlen(slash + 5) >= sizeof tool ||
        strchr(slash + 5, '/')) {
        fprintf(stderr, "labtool: not a lab host's tool: %s\n", script);
        return 127;
    }
    memcpy(lab, script, lablen);
    lab[lablen] = 0;
    memcpy(host, h, (size_t)(slash - h));
    host[slash - h] = 0;
    strcpy(tool, slash + 5);
    snprintf(conf, sizeof conf, "%s/bin/labtool.conf", lab);
    FILE *f = fopen(conf, "r");
    char port[32] = "", token[256] = "", python[4096] = "", emulator[4096] = "";
    if (!f || !fgets(port, sizeof port, f) || !fgets(token, sizeof token, f) ||
        !fgets(python, sizeof python, f) || !fgets(emulator, sizeof emulator, f)) {
        fprintf(stderr, "%s: the lab's %s is missing or short\n", tool, conf);
        return 255;
    }
    fclose(f);
    port[strcspn(port, "\n")] = token[strcspn(token, "\n")] = 0;
    python[strcspn(python, "\n")] = emulator[strcspn(emulator, "\n")] = 0;

    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        /* No server: the emulator as a command (the same output, a Python start-up slower). */
        char **args = calloc((size_t)argc + 8, sizeof *args);
        if (!args) return 255;
        int n = 0;
        args[n++] = python;
        args[n++] = "-S";
        args[n++] = "-E";
        args[n++] = emulator;
        args[n++] = lab;
        args[n++] = host;
        args[n++] = tool;
        for (int i = 2; i < argc; i++) args[n++] = argv[i];
        execv(python, args);
        fprintf(stderr, "%s: cannot run the lab's emulator: %s\n", tool, strerror(errno));
        return 255;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char count[32];
    snprintf(count, sizeof count, "%d", argc - 2);
    const char *head[] = {token, count, host, tool};
    for (int i = 0; i < 4; i++)
        if (write_all(s, head[i], strlen(head[i]) + 1)) goto gone;
    for (int i = 2; i < argc; i++)
        if (write_all(s, argv[i], strlen(argv[i]) + 1)) goto gone;
    char hdr[64];
    while (line(s, hdr, sizeof hdr) == 0) {
        char kind[16];
        unsigned long n;
        if (sscanf(hdr, "%15s %lu", kind, &n) != 2) break;
        if (strcmp(kind, "x") == 0) return (int)(n & 0xff);
        int fd = strcmp(kind, "1") == 0 ? 1 : strcmp(kind, "2") == 0 ? 2 : -1;
        if (fd < 0) break;
        while (n > 0) {
            if (pos == have && next_byte(s) >= 0) pos--;
            if (pos == have) goto gone;
            size_t take = have - pos < n ? have - pos : n;
            write_all(fd, buf + pos, take);
            pos += take;
            n -= take;
        }
    }
gone:
    fprintf(stderr, "%s: the lab's emulator server went away\n", tool);
    return 255;
}
