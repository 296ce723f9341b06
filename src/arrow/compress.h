/* wigeon: IPC body buffer compression (LZ4 frame and ZSTD, Message.fbs BodyCompression). A
 * compressed buffer is an int64 little-endian uncompressed length, then the codec's frame; a length
 * of -1 means the bytes that follow are stored uncompressed. */
#ifndef WG_ARROW_COMPRESS_H
#define WG_ARROW_COMPRESS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

/* Decompresses exactly dst_size bytes of codec data (without the length prefix). Returns 0, or
 * EPROTO if the frame is corrupt or does not produce exactly dst_size bytes. */
int wg_decompress(int codec, const uint8_t *src, int64_t src_size, uint8_t *dst, int64_t dst_size,
                  struct wg_error *err);

/* Appends the compressed form of src to out, with its int64 length prefix (or -1 and the raw
 * bytes when compression does not make it smaller). level 0 = codec default. */
int wg_compress_buffer(int codec, int level, const uint8_t *src, int64_t size, struct wg_buf *out,
                       struct wg_error *err);

#endif
