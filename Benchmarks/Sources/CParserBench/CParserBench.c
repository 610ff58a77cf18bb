// The C side of the parser benchmark: http_parser with callbacks that record spans into a
// fixed array, the fair equivalent of the Swift parser's RequestHead.
#include "CParserBench.h"
#include <http_parser.h>

/// One span: an offset from the start of the message and a length.
typedef struct { long offset; long length; } span;

/// What the callbacks record for one message.
typedef struct {
    const char *base;
    span url;
    span fields[128];
    span values[128];
    int field_count;
    long body_bytes;
    int method, major, minor, keep_alive;
    long messages;
    long checksum;
} recorder;

static recorder *owner(http_parser *parser) { return (recorder *)parser->data; }

static int on_message_begin(http_parser *parser) {
    owner(parser)->field_count = 0;
    owner(parser)->body_bytes = 0;
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t length) {
    recorder *r = owner(parser);
    r->url = (span){at - r->base, (long)length};
    return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t length) {
    recorder *r = owner(parser);
    if (r->field_count < 128) r->fields[r->field_count] = (span){at - r->base, (long)length};
    return 0;
}

static int on_header_value(http_parser *parser, const char *at, size_t length) {
    recorder *r = owner(parser);
    if (r->field_count < 128) r->values[r->field_count++] = (span){at - r->base, (long)length};
    return 0;
}

static int on_headers_complete(http_parser *parser) {
    recorder *r = owner(parser);
    r->method = parser->method;
    r->major = parser->http_major;
    r->minor = parser->http_minor;
    r->keep_alive = http_should_keep_alive(parser);
    return 0;
}

static int on_body(http_parser *parser, const char *at, size_t length) {
    (void)at;
    owner(parser)->body_bytes += (long)length;
    return 0;
}

static int on_message_complete(http_parser *parser) {
    recorder *r = owner(parser);
    r->messages += 1;
    r->checksum += r->field_count + r->url.length + r->body_bytes + r->method + r->keep_alive;
    return 0;
}

long c_parser_bench(const char *bytes, size_t length, long iterations) {
    static const http_parser_settings settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
    };
    recorder r = {0};
    r.base = bytes;
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &r;
    for (long i = 0; i < iterations; i++) {
        size_t parsed = http_parser_execute(&parser, &settings, bytes, length);
        if (parsed != length || HTTP_PARSER_ERRNO(&parser) != HPE_OK) return -1;
    }
    return r.messages == iterations ? r.checksum : -1;
}
