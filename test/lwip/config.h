/* lwIP's test/unit/lwip_check.h includes <config.h> (an autoconf header in
 * lwIP's own build). This empty one shadows stack/config.h, which is dpnet's
 * configuration parser and has nothing to do with it. */
