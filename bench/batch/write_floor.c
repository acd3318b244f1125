/*
 * write_floor: the cost of the assessor's result files alone, for
 * bench/batch.sh. THREADS threads write N files of 2 KB into one directory
 * the way shared/src/atomic.rs does: a hidden O_EXCL temp file, write,
 * [fsync], close, rename over bench-NNNNNN.json, [open the directory, fsync
 * it, close]. MODE 0: no fsync; 1: the file's; 2: the file's and the
 * directory's (what write_atomic does). No HTTP, no JSON: an upper bound for
 * any program that writes one such file per profile.
 *
 *   cc -O2 -pthread -o write_floor bench/batch/write_floor.c
 *   write_floor DIR N MODE THREADS
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>
static const char *dir; static int n, mode, threads; static int next_i = 0;
static void *work(void *arg) {
    char buf[2048]; memset(buf, 'x', sizeof buf); char tmp[4096], dst[4096];
    unsigned seed = (unsigned)(long)arg;
    for (;;) {
        int i = __atomic_fetch_add(&next_i, 1, __ATOMIC_RELAXED);
        if (i >= n) return NULL;
        snprintf(tmp, sizeof tmp, "%s/.bench-%06d.json.%d.tmp", dir, i, rand_r(&seed));
        snprintf(dst, sizeof dst, "%s/bench-%06d.json", dir, i);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) { perror("open"); exit(1); }
        if (write(fd, buf, sizeof buf) != sizeof buf) { perror("write"); exit(1); }
        if (mode >= 1) fsync(fd);
        close(fd);
        if (rename(tmp, dst)) { perror("rename"); exit(1); }
        if (mode >= 2) { int d = open(dir, O_RDONLY | O_CLOEXEC); fsync(d); close(d); }
    }
}
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: write_floor DIR N MODE(0|1|2) THREADS(1-1024)\n"); return 2; }
    dir = argv[1]; n = atoi(argv[2]); mode = atoi(argv[3]); threads = atoi(argv[4]);
    if (n < 1 || threads < 1 || threads > 1024) {
        fprintf(stderr, "usage: write_floor DIR N MODE(0|1|2) THREADS(1-1024)\n");
        return 2;
    }
    if (mkdir(dir, 0755) && errno != EEXIST) { perror(dir); return 1; }
    pthread_t t[1024]; struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%d files mode %d, %d threads: %.3f s, %.0f files/s\n", n, mode, threads, s, n / s);
    return 0;
}
