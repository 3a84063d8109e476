/*
 * fsops.c - small-file operations per second on any directory (a FUSE
 * mount, sshfs, the local disk), for bench/suite_cloudfs.sh:
 *   fsops create <dir> <n> [<first>]  n files of 4 KiB: open(O_CREAT) + write + close
 *   fsops stat <dir> <n> [<first>]    stat of each of those files
 *   fsops readdir <dir>               list the directory (entries counted)
 * Files are f<first>, f<first+1>, ... (first default 0), so a run can be
 * split into chunks that alternate with another mount's.
 * Prints "<ops> <seconds> <ops/s>".
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return fprintf(stderr, "usage: fsops create|stat <dir> <n> [<first>] | readdir <dir>\n"), 2;
	const char *dir = argv[2];
	long n = argc > 3 ? atol(argv[3]) : 0, first = argc > 4 ? atol(argv[4]) : 0, done = 0;
	char buf[4096], p[4096];
	memset(buf, 'v', sizeof buf);
	double t0 = now();
	if (strcmp(argv[1], "create") == 0) {
		for (long i = first; i < first + n; i++, done++) {
			snprintf(p, sizeof p, "%s/f%06ld", dir, i);
			int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || close(fd) != 0)
				return perror(p), 1;
		}
	} else if (strcmp(argv[1], "stat") == 0) {
		struct stat st;
		for (long i = first; i < first + n; i++, done++) {
			snprintf(p, sizeof p, "%s/f%06ld", dir, i);
			if (stat(p, &st) != 0 || st.st_size != (off_t)sizeof buf)
				return perror(p), 1;
		}
	} else if (strcmp(argv[1], "readdir") == 0) {
		DIR *d = opendir(dir);
		if (!d)
			return perror(dir), 1;
		struct dirent *e;
		while ((e = readdir(d)))
			done += e->d_name[0] != '.';
		closedir(d);
	} else {
		return fprintf(stderr, "fsops: unknown operation %s\n", argv[1]), 2;
	}
	double s = now() - t0;
	printf("%ld %.6f %.0f\n", done, s, s > 0 ? (double)done / s : 0.0);
	return 0;
}
