/* wigeon: Arrow C Data Interface format strings, parsed into a type description shared by the IPC
 * decoder (flatbuffer Type -> format), the encoder (format -> flatbuffer Type) and validation. */
#ifndef WG_ARROW_FORMAT_H
#define WG_ARROW_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "arrow/abi.h"
#include "common/error.h"

enum wg_type_id {
  WG_TYPE_NA = 1,
  WG_TYPE_BOOL,
  WG_TYPE_INT8,
  WG_TYPE_UINT8,
  WG_TYPE_INT16,
  WG_TYPE_UINT16,
  WG_TYPE_INT32,
  WG_TYPE_UINT32,
  WG_TYPE_INT64,
  WG_TYPE_UINT64,
  WG_TYPE_HALF_FLOAT,
  WG_TYPE_FLOAT,
  WG_TYPE_DOUBLE,
  WG_TYPE_BINARY,
  WG_TYPE_LARGE_BINARY,
  WG_TYPE_STRING,
  WG_TYPE_LARGE_STRING,
  WG_TYPE_BINARY_VIEW,
  WG_TYPE_STRING_VIEW,
  WG_TYPE_FIXED_SIZE_BINARY,
  WG_TYPE_DECIMAL, /* bit_width 32, 64, 128 or 256 */
  WG_TYPE_DATE32,
  WG_TYPE_DATE64,
  WG_TYPE_TIME32,
  WG_TYPE_TIME64,
  WG_TYPE_TIMESTAMP,
  WG_TYPE_DURATION,
  WG_TYPE_INTERVAL_MONTHS,
  WG_TYPE_INTERVAL_DAY_TIME,
  WG_TYPE_INTERVAL_MONTH_DAY_NANO,
  WG_TYPE_LIST,
  WG_TYPE_LARGE_LIST,
  WG_TYPE_LIST_VIEW,
  WG_TYPE_LARGE_LIST_VIEW,
  WG_TYPE_FIXED_SIZE_LIST,
  WG_TYPE_STRUCT,
  WG_TYPE_MAP,
  WG_TYPE_SPARSE_UNION,
  WG_TYPE_DENSE_UNION,
  WG_TYPE_RUN_END_ENCODED,
};

enum wg_time_unit { WG_TIME_SECOND = 0, WG_TIME_MILLI = 1, WG_TIME_MICRO = 2, WG_TIME_NANO = 3 };

struct wg_arrow_type {
  enum wg_type_id id;
  int32_t bit_width;  /* element width in bits of the data/values buffer (bool 1); 0 if none */
  int32_t fixed_size; /* FIXED_SIZE_BINARY byte width, FIXED_SIZE_LIST list size */
  int32_t precision, scale;    /* DECIMAL */
  enum wg_time_unit time_unit; /* TIME*, TIMESTAMP, DURATION */
  const char *timezone;        /* TIMESTAMP: points into the format string; "" when none */
  int32_t n_type_ids;          /* unions: number of type ids listed */
  int8_t type_ids[128];        /* unions */
};

/* Parses a format string. Returns 0, or EINVAL naming the format. The type borrows `format`. */
int wg_arrow_type_parse(const char *format, struct wg_arrow_type *out, struct wg_error *err);

/* Buffers the C Data Interface expects for this type (view types: the fixed ones, 2, without the
 * variadic buffers and the trailing sizes buffer). */
int wg_arrow_type_n_buffers(const struct wg_arrow_type *t);

/* Children the type requires, or -1 when any number is allowed (struct, unions). */
int wg_arrow_type_n_children(const struct wg_arrow_type *t);

/* Whether buffer 0 is a validity bitmap (false for null, unions and run-end encoded). */
int wg_arrow_type_has_validity(const struct wg_arrow_type *t);

/* Writes a readable name of the schema node's type into out (size bytes, cut to fit, always
 * NUL-terminated), in pyarrow's spelling: "decimal256(40, 1)", "list<dictionary<values=string,
 * indices=int32>>", "dense_union<i: int32=0, s: string=1>"; returns out. For messages only.
 * Reads the schema, owns nothing; thread-safe. */
const char *wg_arrow_schema_describe(const struct ArrowSchema *schema, char *out, size_t size);

#endif
