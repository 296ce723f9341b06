/* wigeon: constants of Arrow's Message.fbs and Schema.fbs, in one place for the readers
 * (ipc_decode.c, ipc_schema.c) and the writer (ipc_encode.c). A new Arrow type gets its tag here;
 * the MessageHeader tags are enum wg_ipc_message_type in ipc.h. */
#ifndef WG_ARROW_FBS_H
#define WG_ARROW_FBS_H

/* Message.fbs MetadataVersion V4 / V5. */
#define WG_IPC_V4 3
#define WG_IPC_V5 4

/* Schema.fbs: the Type union's tags. */
enum wg_fb_type {
  WG_FB_TYPE_NULL = 1,
  WG_FB_TYPE_INT,
  WG_FB_TYPE_FLOATING_POINT,
  WG_FB_TYPE_BINARY,
  WG_FB_TYPE_UTF8,
  WG_FB_TYPE_BOOL,
  WG_FB_TYPE_DECIMAL,
  WG_FB_TYPE_DATE,
  WG_FB_TYPE_TIME,
  WG_FB_TYPE_TIMESTAMP,
  WG_FB_TYPE_INTERVAL,
  WG_FB_TYPE_LIST,
  WG_FB_TYPE_STRUCT,
  WG_FB_TYPE_UNION,
  WG_FB_TYPE_FIXED_SIZE_BINARY,
  WG_FB_TYPE_FIXED_SIZE_LIST,
  WG_FB_TYPE_MAP,
  WG_FB_TYPE_DURATION,
  WG_FB_TYPE_LARGE_BINARY,
  WG_FB_TYPE_LARGE_UTF8,
  WG_FB_TYPE_LARGE_LIST,
  WG_FB_TYPE_RUN_END_ENCODED,
  WG_FB_TYPE_BINARY_VIEW,
  WG_FB_TYPE_UTF8_VIEW,
  WG_FB_TYPE_LIST_VIEW,
  WG_FB_TYPE_LARGE_LIST_VIEW,
};

#endif
