#ifndef C_PARSER_BENCH_H
#define C_PARSER_BENCH_H

#include <stddef.h>

/// Parses `iterations` messages, each the same `length` bytes at `bytes`, with one http_parser
/// kept across them (keep-alive), recording every span the callbacks report the way the Swift
/// parser's head does. Returns a checksum of the recorded spans (so nothing is optimized away),
/// or -1 if http_parser reported an error.
long c_parser_bench(const char *bytes, size_t length, long iterations);

#endif
