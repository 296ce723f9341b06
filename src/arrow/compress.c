/* wigeon: LZ4 frame and ZSTD for IPC bodies (see compress.h). Relies on liblz4 and libzstd. */
#include "arrow/compress.h"

#include <lz4frame.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "arrow/ipc.h"

static int lz4_decompress(const uint8_t *src, int64_t src_size, uint8_t *dst, int64_t dst_size,
                          struct wg_error *err) {
  LZ4F_dctx *ctx;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
    return wg_error_set(err, ENOMEM, "cannot create an LZ4 decompression context");
  int64_t in = 0, outp = 0;
  int rc = 0;
  for (;;) {
    size_t src_left = (size_t)(src_size - in), dst_left = (size_t)(dst_size - outp);
    size_t hint = LZ4F_decompress(ctx, dst + outp, &dst_left, src + in, &src_left, NULL);
    if (LZ4F_isError(hint)) {
      rc = wg_error_set(err, EPROTO, "corrupt LZ4 frame: %s", LZ4F_getErrorName(hint));
      break;
    }
    in += (int64_t)src_left;
    outp += (int64_t)dst_left;
    if (hint == 0) break; /* frame complete */
    if (in >= src_size || (src_left == 0 && dst_left == 0)) {
      rc = wg_error_set(err, EPROTO, "LZ4 frame truncated or longer than the %lld bytes announced",
                        (long long)dst_size);
      break;
    }
  }
  LZ4F_freeDecompressionContext(ctx);
  if (rc == 0 && outp != dst_size)
    rc = wg_error_set(err, EPROTO, "LZ4 frame gave %lld bytes, header announced %lld",
                      (long long)outp, (long long)dst_size);
  return rc;
}

int wg_decompress(int codec, const uint8_t *src, int64_t src_size, uint8_t *dst, int64_t dst_size,
                  struct wg_error *err) {
  if (codec == WG_IPC_COMPRESSION_LZ4_FRAME)
    return lz4_decompress(src, src_size, dst, dst_size, err);
  if (codec == WG_IPC_COMPRESSION_ZSTD) {
    size_t n = ZSTD_decompress(dst, (size_t)dst_size, src, (size_t)src_size);
    if (ZSTD_isError(n) && ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
      return wg_error_set(err, ENOMEM, "ZSTD decompression: %s", ZSTD_getErrorName(n));
    if (ZSTD_isError(n))
      return wg_error_set(err, EPROTO, "corrupt ZSTD frame: %s", ZSTD_getErrorName(n));
    if ((int64_t)n != dst_size)
      return wg_error_set(err, EPROTO, "ZSTD frame gave %lld bytes, header announced %lld",
                          (long long)n, (long long)dst_size);
    return 0;
  }
  return wg_error_set(err, ENOTSUP, "unknown compression codec %d", codec);
}

int wg_compress_buffer(int codec, int level, const uint8_t *src, int64_t size, struct wg_buf *out,
                       struct wg_error *err) {
  size_t bound;
  if (codec == WG_IPC_COMPRESSION_LZ4_FRAME) {
    bound = LZ4F_compressFrameBound((size_t)size, NULL);
  } else if (codec == WG_IPC_COMPRESSION_ZSTD) {
    bound = ZSTD_compressBound((size_t)size);
  } else {
    return wg_error_set(err, ENOTSUP, "unknown compression codec %d", codec);
  }
  if (wg_buf_reserve(out, 8 + (int64_t)bound) != 0)
    return wg_error_set(err, ENOMEM, "out of memory compressing %lld bytes", (long long)size);
  uint8_t *prefix = out->data + out->size;
  uint8_t *dst = prefix + 8;
  size_t n;
  if (codec == WG_IPC_COMPRESSION_LZ4_FRAME) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.compressionLevel = level;
    n = LZ4F_compressFrame(dst, bound, src, (size_t)size, &prefs);
    if (LZ4F_isError(n))
      return wg_error_set(err, EINVAL, "LZ4 compression failed: %s", LZ4F_getErrorName(n));
  } else {
    n = ZSTD_compress(dst, bound, src, (size_t)size, level == 0 ? 1 : level);
    if (ZSTD_isError(n))
      return wg_error_set(err, EINVAL, "ZSTD compression failed: %s", ZSTD_getErrorName(n));
  }
  if ((int64_t)n >= size) { /* not worth it: store raw */
    wg_store_i64(prefix, -1);
    if (size > 0) memcpy(dst, src, (size_t)size);
    out->size += 8 + size;
  } else {
    wg_store_i64(prefix, size);
    out->size += 8 + (int64_t)n;
  }
  return 0;
}
