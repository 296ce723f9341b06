/* wigeon: Arrow array concatenation (arrow/concat.h) on hand-built arrays: offsets, validity,
 * parent and child offsets, list views, run ends, dictionaries, the empty concatenation (every
 * result checked value by value and validated); wg_arrow_range_bytes. Links the codec only. */
#include <stdbool.h>
#include <stdint.h>

#include "arrow/array.h"
#include "arrow/concat.h"
#include "arrow/ipc.h"
#include "test.h"

static const struct ArrowSchema *field(struct ArrowSchema *s) {
  return s;
}

static void concat_utf8_honours_offsets_and_validity(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "u", 0, &err), &err);
  /* a = ["x", "yy", null, "zzz"] offset 1 -> ["yy", null, "zzz"]; b = ["p", "q"] offset 1 -> ["q"]
   */
  static const int32_t ao[] = {0, 1, 3, 3, 6};
  static const char ad[] = "xyyzzz";
  static const uint8_t av[] = {0x0b}; /* 1101 */
  static const int32_t bo[] = {0, 1, 2};
  static const char bd[] = "pq";
  struct ArrowArray in[2], out;
  ASSERT_EQ(wg_array_node_init(&in[0], 3, 0, NULL), 0);
  in[0].length = 3, in[0].offset = 1, in[0].null_count = 1;
  in[0].buffers[0] = av, in[0].buffers[1] = ao, in[0].buffers[2] = ad;
  ASSERT_EQ(wg_array_node_init(&in[1], 3, 0, NULL), 0);
  in[1].length = 1, in[1].offset = 1;
  in[1].buffers[1] = bo, in[1].buffers[2] = bd;
  ASSERT_OK(wg_arrow_concat(field(&sch), in, 2, &out, &err), &err);
  ASSERT_TRUE(in[0].release == NULL && in[1].release == NULL);
  ASSERT_EQ(out.length, 4);
  ASSERT_EQ(out.offset, 0);
  ASSERT_EQ(out.null_count, 1);
  const int32_t *o = out.buffers[1];
  const uint8_t *v = out.buffers[0];
  ASSERT_EQ(o[0], 0);
  ASSERT_EQ(o[1], 2);
  ASSERT_EQ(o[2], 2);
  ASSERT_EQ(o[3], 5);
  ASSERT_EQ(o[4], 6);
  ASSERT_TRUE(memcmp(out.buffers[2], "yyzzzq", 6) == 0);
  ASSERT_EQ(v[0] & 0xf, 0xd); /* valid, null, valid, valid */
  ASSERT_EQ(wg_ipc_validate_array(&sch, &out, &err), 0);
  out.release(&out);
  sch.release(&sch);
}

static void concat_list_of_int_rebases_offsets_with_parent_and_child_offsets(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "+l", 1, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[0], "i", 0, &err), &err);
  /* child values 10..19 with offset 2 -> logical [12..19]; lists [0,2) [2,5) [5,8) offset 1 */
  static const int32_t vals[] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  static const int32_t lo[] = {0, 2, 5, 8};
  struct ArrowArray in[2], out;
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(wg_array_node_init(&in[i], 2, 1, NULL), 0);
    ASSERT_EQ(wg_array_node_init(in[i].children[0], 2, 0, NULL), 0);
    in[i].children[0]->length = 8, in[i].children[0]->offset = 2;
    in[i].children[0]->buffers[1] = vals;
    in[i].buffers[1] = lo;
  }
  in[0].length = 2, in[0].offset = 1; /* [[14,15,16],[17,18,19]] */
  in[1].length = 1, in[1].offset = 0; /* [[12,13]] */
  ASSERT_OK(wg_arrow_concat(&sch, in, 2, &out, &err), &err);
  ASSERT_EQ(out.length, 3);
  const int32_t *o = out.buffers[1];
  ASSERT_EQ(o[0], 0);
  ASSERT_EQ(o[1], 3);
  ASSERT_EQ(o[2], 6);
  ASSERT_EQ(o[3], 8);
  const int32_t *cv = out.children[0]->buffers[1];
  ASSERT_EQ(out.children[0]->length, 8);
  static const int32_t want[] = {14, 15, 16, 17, 18, 19, 12, 13};
  for (int i = 0; i < 8; i++)
    ASSERT_EQ(cv[i], want[i]);
  ASSERT_EQ(wg_ipc_validate_array(&sch, &out, &err), 0);
  out.release(&out);
  sch.release(&sch);
}

static void concat_struct_applies_parent_offset_to_children(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "+s", 2, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[0], "l", 0, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[1], "b", 0, &err), &err);
  static const int64_t a[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  static const uint8_t bits[] = {0xaa, 0x05};  /* 0,1,0,1,0,1,0,1,1,0,1 */
  static const uint8_t valid[] = {0xfe, 0x07}; /* slot 0 null */
  struct ArrowArray in[3], out;
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(wg_array_node_init(&in[i], 1, 2, NULL), 0);
    ASSERT_EQ(wg_array_node_init(in[i].children[0], 2, 0, NULL), 0);
    ASSERT_EQ(wg_array_node_init(in[i].children[1], 2, 0, NULL), 0);
    in[i].children[0]->buffers[1] = a;
    in[i].children[0]->length = 10, in[i].children[0]->offset = 1; /* logical 2..11 */
    in[i].children[1]->buffers[1] = bits;
    in[i].children[1]->buffers[0] = valid;
    in[i].children[1]->null_count = -1;
    in[i].children[1]->length = 11, in[i].children[1]->offset = 0;
  }
  in[0].offset = 0, in[0].length = 3; /* a 2,3,4   b null,1,0 */
  in[1].offset = 5, in[1].length = 4; /* a 7,8,9,10 b 1,0,1,1 */
  in[2].offset = 9, in[2].length = 0;
  ASSERT_OK(wg_arrow_concat(&sch, in, 3, &out, &err), &err);
  ASSERT_EQ(out.length, 7);
  static const int64_t wa[] = {2, 3, 4, 7, 8, 9, 10};
  static const int wb[] = {-1, 1, 0, 1, 0, 1, 1};
  const int64_t *ca = out.children[0]->buffers[1];
  struct ArrowArray *cb = out.children[1];
  ASSERT_EQ(cb->null_count, 1);
  for (int i = 0; i < 7; i++) {
    ASSERT_EQ(ca[i], wa[i]);
    int got = wg_bit_get(cb->buffers[0], i) ? wg_bit_get(cb->buffers[1], i) : -1;
    ASSERT_EQ(got, wb[i]);
  }
  ASSERT_EQ(wg_ipc_validate_array(&sch, &out, &err), 0);
  out.release(&out);
  sch.release(&sch);
}

static void concat_list_views_rebase_offsets_of_overlapping_views(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "+vl", 1, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[0], "i", 0, &err), &err);
  /* child 10..19 at offset 2 (logical 12..19); views out of order, overlapping, one empty */
  static const int32_t vals[] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  static const int32_t offs[] = {5, 1, 0, 3}, sizes[] = {2, 3, 0, 2};
  struct ArrowArray in[2], out;
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(wg_array_node_init(&in[i], 3, 1, NULL), 0);
    ASSERT_EQ(wg_array_node_init(in[i].children[0], 2, 0, NULL), 0);
    in[i].children[0]->length = 8, in[i].children[0]->offset = 2;
    in[i].children[0]->buffers[1] = vals;
    in[i].buffers[1] = offs, in[i].buffers[2] = sizes;
  }
  in[0].length = 3, in[0].offset = 0; /* [17,18] [13,14,15] [] */
  in[1].length = 2, in[1].offset = 2; /* [] [15,16] */
  ASSERT_OK(wg_arrow_concat(&sch, in, 2, &out, &err), &err);
  ASSERT_EQ(out.length, 5);
  static const int32_t want[5][3] = {{17, 18}, {13, 14, 15}, {0}, {0}, {15, 16}};
  static const int32_t want_n[] = {2, 3, 0, 0, 2};
  const int32_t *o = out.buffers[1], *z = out.buffers[2], *cv = out.children[0]->buffers[1];
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(z[i], want_n[i]);
    ASSERT_TRUE(o[i] >= 0 && o[i] + z[i] <= out.children[0]->length);
    for (int j = 0; j < z[i]; j++)
      ASSERT_EQ(cv[o[i] + j], want[i][j]);
  }
  ASSERT_EQ(wg_ipc_validate_array(&sch, &out, &err), 0);
  out.release(&out);
  sch.release(&sch);
}

static void concat_run_end_encoded_cuts_runs_at_slices(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "+r", 2, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[0], "i", 0, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[1], "l", 0, &err), &err);
  /* runs: 7 x2, 8 x3, 9 x4 -> ends 2, 5, 9 */
  static const int32_t ends[] = {2, 5, 9};
  static const int64_t vals[] = {7, 8, 9};
  struct ArrowArray in[2], out;
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(wg_array_node_init(&in[i], 0, 2, NULL), 0);
    ASSERT_EQ(wg_array_node_init(in[i].children[0], 2, 0, NULL), 0);
    ASSERT_EQ(wg_array_node_init(in[i].children[1], 2, 0, NULL), 0);
    in[i].children[0]->length = 3, in[i].children[0]->buffers[1] = ends;
    in[i].children[1]->length = 3, in[i].children[1]->buffers[1] = vals;
  }
  in[0].offset = 1, in[0].length = 3; /* 7 8 8 */
  in[1].offset = 4, in[1].length = 3; /* 8 9 9 */
  ASSERT_OK(wg_arrow_concat(&sch, in, 2, &out, &err), &err);
  ASSERT_EQ(out.length, 6);
  ASSERT_EQ(out.children[0]->length, 4);
  static const int32_t want_ends[] = {1, 3, 4, 6};
  static const int64_t want_vals[] = {7, 8, 8, 9};
  const int32_t *e = out.children[0]->buffers[1];
  const int64_t *v = out.children[1]->buffers[1];
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(e[i], want_ends[i]);
    ASSERT_EQ(v[i], want_vals[i]);
  }
  out.release(&out);
  sch.release(&sch);
}

static int make_dict_array(struct ArrowArray *a, const int8_t *idx, int64_t n, const int32_t *doff,
                           const char *dd, int64_t dn) {
  WG_RETURN_NOT_OK(wg_array_node_init(a, 2, 0, NULL));
  a->length = n;
  a->buffers[1] = idx;
  WG_RETURN_NOT_OK(wg_array_alloc_dictionary(a));
  WG_RETURN_NOT_OK(wg_array_node_init(a->dictionary, 3, 0, NULL));
  a->dictionary->length = dn;
  a->dictionary->buffers[1] = doff;
  a->dictionary->buffers[2] = dd;
  return 0;
}

static void concat_dictionary_keeps_equal_dictionaries_and_shifts_indices_otherwise(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "c", 0, &err), &err);
  ASSERT_EQ(wg_schema_alloc_dictionary(&sch), 0);
  ASSERT_OK(wg_schema_node_init(sch.dictionary, "u", 0, &err), &err);
  static const int32_t d1o[] = {0, 3, 6}, d2o[] = {0, 3, 6}, d3o[] = {0, 5};
  static const char d1[] = "redblu", d2[] = "redblu", d3[] = "green";
  static const int8_t i1[] = {0, 1, 1}, i2[] = {1, 0}, i3[] = {0, 0};
  struct ArrowArray in[3], out;
  /* equal by content (different buffers): one dictionary, indices copied */
  ASSERT_EQ(make_dict_array(&in[0], i1, 3, d1o, d1, 2), 0);
  ASSERT_EQ(make_dict_array(&in[1], i2, 2, d2o, d2, 2), 0);
  ASSERT_OK(wg_arrow_concat(&sch, in, 2, &out, &err), &err);
  ASSERT_EQ(out.length, 5);
  ASSERT_EQ(out.dictionary->length, 2);
  const int8_t *o = out.buffers[1];
  ASSERT_EQ(o[3], 1);
  ASSERT_EQ(o[4], 0);
  out.release(&out);
  /* different: dictionaries concatenated, later indices shifted; input 0 sliced by offset */
  ASSERT_EQ(make_dict_array(&in[0], i1, 2, d1o, d1, 2), 0);
  in[0].offset = 1;                                         /* [blu, blu] */
  ASSERT_EQ(make_dict_array(&in[1], i3, 2, d3o, d3, 1), 0); /* [green, green] */
  ASSERT_EQ(make_dict_array(&in[2], i2, 2, d2o, d2, 2), 0); /* [blu, red] */
  ASSERT_OK(wg_arrow_concat(&sch, in, 3, &out, &err), &err);
  ASSERT_EQ(out.length, 6);
  ASSERT_EQ(out.dictionary->length, 5);
  o = out.buffers[1];
  static const int8_t want[] = {1, 1, 2, 2, 4, 3};
  for (int i = 0; i < 6; i++)
    ASSERT_EQ(o[i], want[i]);
  ASSERT_TRUE(memcmp(out.dictionary->buffers[2], "redblugreenredblu", 17) == 0);
  ASSERT_EQ(wg_ipc_validate_array(&sch, &out, &err), 0);
  out.release(&out);
  sch.release(&sch);
}

static void concat_of_nothing_is_an_empty_array_of_the_schema(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "+s", 2, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[0], "+l", 1, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[0]->children[0], "vu", 0, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[1], "+ud:0,1", 2, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[1]->children[0], "d:38,2", 0, &err), &err);
  ASSERT_OK(wg_schema_node_init(sch.children[1]->children[1], "tsu:UTC", 0, &err), &err);
  struct ArrowArray out;
  ASSERT_OK(wg_arrow_concat(&sch, NULL, 0, &out, &err), &err);
  ASSERT_EQ(out.length, 0);
  ASSERT_EQ(out.n_children, 2);
  ASSERT_EQ(wg_ipc_validate_array(&sch, &out, &err), 0);
  out.release(&out);
  sch.release(&sch);
}

/* wg_arrow_range_bytes: what a range of rows costs in buffers (validity where there are nulls,
 * offsets, the data the range spans), relative to the array's offset; -1 for what it cannot tell. */
static void range_bytes_counts_validity_offsets_and_spanned_data(void) {
  struct ArrowSchema sch;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_schema_node_init(&sch, "u", 0, &err), &err);
  /* ["x", "yy", null, "zzz"] at offset 1: ["yy", null, "zzz"] */
  static const int32_t ao[] = {0, 1, 3, 3, 6};
  static const char ad[] = "xyyzzz";
  static const uint8_t av[] = {0x0b};
  struct ArrowArray a;
  ASSERT_EQ(wg_array_node_init(&a, 3, 0, NULL), 0);
  a.length = 3, a.offset = 1, a.null_count = 1;
  a.buffers[0] = av, a.buffers[1] = ao, a.buffers[2] = ad;
  /* rows 0..3: 1 validity byte, 4 offsets, "yyzzz" */
  ASSERT_EQ(wg_arrow_range_bytes(&sch, &a, 0, 3), 1 + 4 * 4 + 5);
  /* row 2 alone: 1 validity byte, 2 offsets, "zzz" */
  ASSERT_EQ(wg_arrow_range_bytes(&sch, &a, 2, 1), 1 + 2 * 4 + 3);
  ASSERT_EQ(wg_arrow_range_bytes(&sch, &a, 0, 0), 0);
  ASSERT_EQ(wg_arrow_range_bytes(&sch, &a, 2, 2), -1); /* past the end */
  a.null_count = 0;                                    /* no nulls: no validity bytes */
  ASSERT_EQ(wg_arrow_range_bytes(&sch, &a, 0, 3), 4 * 4 + 5);
  a.release(&a);
  sch.release(&sch);

  ASSERT_OK(wg_schema_node_init(&sch, "x", 0, &err), &err); /* no such format */
  ASSERT_EQ(wg_array_node_init(&a, 2, 0, NULL), 0);
  a.length = 1;
  ASSERT_EQ(wg_arrow_range_bytes(&sch, &a, 0, 1), -1);
  a.release(&a);
  sch.release(&sch);
}

int main(void) {
  RUN_TEST(concat_utf8_honours_offsets_and_validity);
  RUN_TEST(concat_list_of_int_rebases_offsets_with_parent_and_child_offsets);
  RUN_TEST(concat_struct_applies_parent_offset_to_children);
  RUN_TEST(concat_dictionary_keeps_equal_dictionaries_and_shifts_indices_otherwise);
  RUN_TEST(concat_list_views_rebase_offsets_of_overlapping_views);
  RUN_TEST(concat_run_end_encoded_cuts_runs_at_slices);
  RUN_TEST(concat_of_nothing_is_an_empty_array_of_the_schema);
  RUN_TEST(range_bytes_counts_validity_offsets_and_spanned_data);
  return TEST_SUMMARY();
}
