// The system http_parser header, found on the default include path (libhttp-parser-dev).
#include <http_parser.h>
