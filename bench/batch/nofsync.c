/*
 * nofsync.so: an LD_PRELOAD shim for bench/batch.sh's "what if" run: fsync()
 * and fdatasync() return 0 at once, so the assessor's atomic writes keep
 * their temp file, write and rename but skip both flushes (the file's and the
 * directory's). Rust's File::sync_all calls libc's fsync, which this
 * replaces. Never use it outside a benchmark.
 *
 *   cc -O2 -shared -fPIC -o nofsync.so bench/batch/nofsync.c
 */
int fsync(int fd) { (void)fd; return 0; }
int fdatasync(int fd) { (void)fd; return 0; }
