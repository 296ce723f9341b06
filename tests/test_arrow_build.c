/* wigeon: the row-by-row array builder (src/arrow/build.c): each kind's buffers as the Arrow
 * layout has them, validated by the IPC validator and carried through an IPC stream and back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/build.h"
#include "arrow/ipc.h"
#include "test.h"


static int32_t i32_at(const struct ArrowArray *a, int buf, int64_t i) {
  int32_t v;
  memcpy(&v, (const uint8_t *)a->buffers[buf] + 4 * i, 4);
  return v;
}

static void utf8_with_nulls_has_offsets_and_validity(void) {
  struct wg_col c;
  wg_col_init(&c, WG_COL_VAR, 0);
  ASSERT_EQ(wg_col_str(&c, "ab"), 0);
  ASSERT_EQ(wg_col_str(&c, NULL), 0);
  ASSERT_EQ(wg_col_str(&c, ""), 0);
  ASSERT_EQ(wg_col_str(&c, "xyz"), 0);
  struct ArrowArray a;
  struct wg_error err;
  ASSERT_OK(wg_col_finish(&c, NULL, 0, &a, &err), &err);
  ASSERT_EQ(a.length, 4);
  ASSERT_EQ(a.null_count, 1);
  ASSERT_EQ(a.n_buffers, 3);
  const uint8_t *valid = a.buffers[0];
  ASSERT_EQ(valid[0] & 0x0f, 0x0d);
  int32_t want[] = {0, 2, 2, 2, 5};
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(i32_at(&a, 1, i), want[i]);
  ASSERT_TRUE(memcmp(a.buffers[2], "abxyz", 5) == 0);
  wg_array_release(&a);
  ASSERT_EQ(a.release, NULL);
}

static void empty_columns_still_have_their_first_offset(void) {
  struct wg_col c;
  wg_col_init(&c, WG_COL_VAR, 0);
  struct ArrowArray a;
  struct wg_error err;
  ASSERT_OK(wg_col_finish(&c, NULL, 0, &a, &err), &err);
  ASSERT_EQ(a.length, 0);
  ASSERT_TRUE(a.buffers[1] != NULL);
  ASSERT_EQ(i32_at(&a, 1, 0), 0);
  ASSERT_EQ(a.buffers[0], NULL); /* no nulls: no validity buffer */
  wg_array_release(&a);
}

static void finish_refuses_children_that_do_not_fit(void) {
  struct wg_col list, st;
  wg_col_init(&list, WG_COL_LIST, 0);
  wg_col_init(&st, WG_COL_STRUCT, 0);
  struct ArrowArray out;
  struct wg_error err;
  ASSERT_EQ(wg_col_finish(&list, NULL, 0, &out, &err), EINVAL); /* a list needs its child */
  struct wg_col v;
  wg_col_init(&v, WG_COL_FIXED, 4);
  ASSERT_EQ(wg_col_i32(&v, 7), 0);
  struct ArrowArray kid;
  ASSERT_OK(wg_col_finish(&v, NULL, 0, &kid, &err), &err);
  ASSERT_EQ(wg_col_finish(&st, &kid, 1, &out, &err), EINVAL); /* 1 row child, 0 row struct */
  ASSERT_TRUE(strstr(err.message, "struct child 0 has 1 rows") != NULL);
  ASSERT_TRUE(kid.release != NULL); /* left to the caller */
  wg_array_release(&kid);
  wg_col_reset(&list);
  wg_col_reset(&st);
}

/* struct<n: int32 not null, b: bool, l: list<item: utf8>, u: dense_union<s: utf8, i: int64>> */
static int nested_schema(struct ArrowSchema *s, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_field_init(s, "+s", "", false, 4, err));
  int rc = wg_field_init(s->children[0], "i", "n", false, 0, err);
  if (rc == 0) rc = wg_field_init(s->children[1], "b", "b", true, 0, err);
  if (rc == 0) rc = wg_field_init(s->children[2], "+l", "l", true, 1, err);
  if (rc == 0) rc = wg_field_init(s->children[2]->children[0], "u", "item", true, 0, err);
  if (rc == 0) rc = wg_field_init(s->children[3], "+ud:0,1", "u", false, 2, err);
  if (rc == 0) rc = wg_field_init(s->children[3]->children[0], "u", "s", false, 0, err);
  if (rc == 0) rc = wg_field_init(s->children[3]->children[1], "l", "i", false, 0, err);
  return rc;
}

static void nested_arrays_validate_and_survive_an_ipc_round_trip(void) {
  struct wg_error err;
  struct ArrowSchema schema;
  ASSERT_OK(nested_schema(&schema, &err), &err);
  struct wg_col n, b, l, items, u, us, ui, top;
  wg_col_init(&n, WG_COL_FIXED, 4);
  wg_col_init(&b, WG_COL_BOOL, 0);
  wg_col_init(&l, WG_COL_LIST, 0);
  wg_col_init(&items, WG_COL_VAR, 0);
  wg_col_init(&u, WG_COL_UNION, 0);
  wg_col_init(&us, WG_COL_VAR, 0);
  wg_col_init(&ui, WG_COL_FIXED, 8);
  wg_col_init(&top, WG_COL_STRUCT, 0);
  for (int r = 0; r < 3; r++) {
    ASSERT_EQ(wg_col_i32(&n, r * 10), 0);
    ASSERT_EQ(r == 1 ? wg_col_null(&b) : wg_col_bool(&b, r == 2), 0);
    for (int k = 0; k < r; k++)
      ASSERT_EQ(wg_col_str(&items, k ? "y" : "x"), 0);
    ASSERT_EQ(r == 0 ? wg_col_null(&l) : wg_col_list_end(&l, items.length), 0);
    if (r % 2 == 0) {
      ASSERT_EQ(wg_col_union(&u, 0, (int32_t)us.length), 0);
      ASSERT_EQ(wg_col_str(&us, "s"), 0);
    } else {
      ASSERT_EQ(wg_col_union(&u, 1, (int32_t)ui.length), 0);
      ASSERT_EQ(wg_col_i64(&ui, 42), 0);
    }
    ASSERT_EQ(wg_col_struct_row(&top), 0);
  }
  struct ArrowArray kids[4], item_arr, ukids[2], batch;
  ASSERT_OK(wg_col_finish(&n, NULL, 0, &kids[0], &err), &err);
  ASSERT_OK(wg_col_finish(&b, NULL, 0, &kids[1], &err), &err);
  ASSERT_OK(wg_col_finish(&items, NULL, 0, &item_arr, &err), &err);
  ASSERT_OK(wg_col_finish(&l, &item_arr, 1, &kids[2], &err), &err);
  ASSERT_OK(wg_col_finish(&us, NULL, 0, &ukids[0], &err), &err);
  ASSERT_OK(wg_col_finish(&ui, NULL, 0, &ukids[1], &err), &err);
  ASSERT_OK(wg_col_finish(&u, ukids, 2, &kids[3], &err), &err);
  ASSERT_OK(wg_col_finish(&top, kids, 4, &batch, &err), &err);
  ASSERT_EQ(kids[3].n_buffers, 2); /* dense union: type ids, offsets; no validity */
  ASSERT_EQ(kids[2].null_count, 1);
  ASSERT_EQ(batch.children[2]->children[0]->length, 3);
  ASSERT_OK(wg_ipc_validate_array(&schema, &batch, &err), &err);
  /* through an IPC stream and back */
  struct ArrowArrayStream st;
  ASSERT_OK(wg_stream_single(&schema, &batch, &st, &err), &err);
  ASSERT_EQ(schema.release, NULL);
  struct wg_buf bytes;
  wg_buf_init(&bytes);
  ASSERT_OK(wg_ipc_write_stream(&st, NULL, &bytes, &err), &err);
  st.release(&st);
  struct wg_shared *sh = wg_shared_copy(bytes.data, bytes.size);
  wg_buf_reset(&bytes);
  ASSERT_TRUE(sh != NULL);
  struct ArrowArrayStream rd;
  ASSERT_EQ(wg_ipc_stream_reader_init(&rd, sh, NULL), 0);
  wg_shared_unref(sh); /* the reader holds its own reference */
  struct ArrowSchema back;
  struct ArrowArray got;
  ASSERT_EQ(rd.get_schema(&rd, &back), 0);
  ASSERT_STREQ(back.children[3]->format, "+ud:0,1");
  ASSERT_EQ(back.children[0]->flags & ARROW_FLAG_NULLABLE, 0);
  ASSERT_STREQ(back.children[2]->children[0]->name, "item");
  ASSERT_EQ(rd.get_next(&rd, &got), 0);
  ASSERT_EQ(got.length, 3);
  ASSERT_EQ(i32_at(got.children[0], 1, 2), 20);
  ASSERT_EQ(got.children[1]->null_count, 1);
  const int8_t *ids = got.children[3]->buffers[0];
  ASSERT_EQ(ids[0], 0);
  ASSERT_EQ(ids[1], 1);
  ASSERT_EQ(i32_at(got.children[3], 1, 2), 1); /* the second string */
  ASSERT_EQ(i32_at(got.children[2], 1, 3), 3); /* 0 + 1 + 2 items */
  wg_array_release(&got);
  wg_schema_release(&back);
  rd.release(&rd);
}

int main(void) {
  RUN_TEST(utf8_with_nulls_has_offsets_and_validity);
  RUN_TEST(empty_columns_still_have_their_first_offset);
  RUN_TEST(finish_refuses_children_that_do_not_fit);
  RUN_TEST(nested_arrays_validate_and_survive_an_ipc_round_trip);
  return TEST_SUMMARY();
}
