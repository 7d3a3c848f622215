/**
 * Filter and update cases ported from montydb's test suite
 * (github.com/davidlatwe/montydb, tests/test_engine: test_queries and
 * test_update), whose expectations were checked against a real mongod: a
 * representative handful per operator file, as a table (the documents, the
 * filter or update, and the count of matches, the documents after, or an
 * error). Cases with BSON types JavaScript has no value for (Int64,
 * Decimal128, ObjectId, Binary, Code, Timestamp, MinKey/MaxKey) and cases on
 * `_id` (montydb's are numbers, ours strings) are not ported.
 */
import assert from "node:assert/strict";
import { open } from "../mod.ts";

type Doc = Record<string, unknown>;

/** [name, documents, filter, matches or "error"] */
const FIND_CASES: [string, Doc[], Doc, number | "error"][] = [
  ["qop_all_1", [{ "a": [1, 2, 3] }, { "a": [2, 5] }], {
    "a": { "$all": [2, 3] },
  }, 1],
  ["qop_all_2", [{ "a": [1, 2, 3] }, { "a": [2, 5] }], {
    "a": { "$all": [2, 3] },
  }, 1],
  ["qop_all_4", [{ "a": [3, 1, 2] }, { "a": [3, 2] }], {
    "a": { "$all": [2, 3] },
  }, 2],
  [
    "qop_all_5",
    [{ "a": [3, 1, 2] }, { "a": [[2, 3], 1] }, { "a": [[3, 2], 1] }],
    { "a": { "$all": [[2, 3]] } },
    1,
  ],
  ["qop_all_7", [{ "a": [{ "b": 1, "c": false }, { "b": 2, "c": false }] }, {
    "a": [{ "b": 1, "c": true }, { "b": 2, "c": true }],
  }], {
    "a": {
      "$all": [{ "$elemMatch": { "b": { "$lt": 5 } } }, {
        "$elemMatch": { "c": false },
      }],
    },
  }, 1],
  ["qop_all_8", [{ "a": [{ "b": 1, "c": false }, { "b": 2, "c": false }] }, {
    "a": [{ "b": 1, "c": true }, { "b": 2, "c": true }],
  }], {
    "a": { "$all": [{ "$elemMatch": { "b": { "$lt": 5 }, "c": false } }] },
  }, 1],
  ["qop_elemMatch_1", [{ "a": [3, 2, 1] }, { "a": [4, 5] }], {
    "a": { "$elemMatch": { "$eq": 1 } },
  }, 1],
  [
    "qop_elemMatch_12",
    [{ "a": [[{ "b": [10, 11] }]] }, { "a": [[{ "b": [20, 21] }]] }],
    { "a.0.b": { "$elemMatch": { "$and": [{ "0": 10 }] } } },
    0,
  ],
  ["qop_elemMatch_16", [{ "foo": [["bar"]] }], {
    "foo": { "$elemMatch": { "$elemMatch": { "$in": ["bar"] } } },
  }, 1],
  [
    "qop_elemMatch_3",
    [{ "a": [{ "b": [10, 11] }, { "b": 2 }] }, {
      "a": [{ "b": [20, 21] }, { "b": 4 }],
    }],
    { "a.0": { "$elemMatch": { "b": { "$gt": 20 } } } },
    0,
  ],
  ["qop_elemMatch_6", [{ "a": [75, 82] }, { "a": [75, 88] }], {
    "a": { "$elemMatch": { "$gte": 80, "$lt": 85 } },
  }, 1],
  [
    "qop_elemMatch_9",
    [{ "a": [[[1, 2], true], [[1, 2], true]] }, {
      "a": [[[1, 0], true], [[1, 3], false]],
    }],
    { "a": { "$elemMatch": { "$or": [{ "0": [1, 0] }, { "1": false }] } } },
    1,
  ],
  [
    "qop_size_1",
    [{ "a": [0, 1, 2] }, { "a": [0, 1] }],
    { "a": { "$size": 3 } },
    1,
  ],
  ["qop_size_2", [{ "a": [[0, 1], 1] }, { "a": [0, [0, 1]] }], {
    "a.0": { "$size": 2 },
  }, 1],
  [
    "qop_size_3",
    [{ "a": [{ "b": [0, 1] }, { "b": [0] }] }, {
      "a": [{ "b": [0, 1, 2] }, { "b": [] }],
    }],
    { "a.0.b": { "$size": 2 } },
    1,
  ],
  [
    "qop_size_4",
    [{ "a": [{ "b": [0, 1] }, { "b": [0] }] }, {
      "a": [{ "b": [0, 1, 2] }, { "b": [] }],
    }],
    { "a.b": { "$size": 2 } },
    1,
  ],
  ["qop_eq_1", [{ "a": 1 }, { "a": 0 }], { "a": 1 }, 1],
  ["qop_eq_12", [{ "tags": [["ssl", "security"], "warning"] }], {
    "tags.0": "security",
  }, 0],
  ["qop_eq_2", [{ "a": 1 }, { "a": 0 }], { "a": { "$eq": 1 } }, 1],
  ["qop_eq_3", [{ "a": [1] }, { "a": 1 }], { "a": { "$eq": 1 } }, 2],
  ["qop_eq_4", [{ "a": [1] }, { "a": [[1], 2] }], { "a": { "$eq": [1] } }, 2],
  [
    "qop_eq_5",
    [{ "a": [2, 1] }, { "a": [1, 2] }, { "a": [[2, 1], 3] }, {
      "a": [[1, 2], 3],
    }],
    { "a": { "$eq": [2, 1] } },
    2,
  ],
  ["qop_gt_1", [{ "a": 0 }, { "a": 1 }], { "a": { "$gt": 0 } }, 1],
  ["qop_gt_16", [{ "a": [2, 3] }, { "a": 2 }], { "a": { "$gt": 2 } }, 1],
  ["qop_gt_18", [{ "a": [1, 3] }, { "a": 2 }], { "a": { "$gt": [2] } }, 0],
  ["qop_gt_3", [{ "a": 10 }, { "a": "10" }], { "a": { "$gt": 10 } }, 0],
  ["qop_gt_5", [{ "a": 1 }, { "a": false }], { "a": { "$gt": false } }, 0],
  ["qop_gt_8", [{ "a": { "b": 4 } }, { "a": { "e": 4 } }], {
    "a": { "$gt": { "c": 4 } },
  }, 1],
  ["qop_gte_1", [{ "a": 0 }, { "a": 1 }], { "a": { "$gte": 0 } }, 2],
  ["qop_gte_16", [{ "a": [2, 3] }, { "a": 2 }], { "a": { "$gte": 2 } }, 2],
  ["qop_gte_18", [{ "a": [1, 3] }, { "a": 2 }], { "a": { "$gte": [2] } }, 0],
  ["qop_gte_3", [{ "a": 10 }, { "a": "10" }], { "a": { "$gte": 10 } }, 1],
  ["qop_gte_5", [{ "a": 1 }, { "a": false }], { "a": { "$gte": false } }, 1],
  ["qop_gte_8", [{ "a": { "b": 4 } }, { "a": { "e": 4 } }], {
    "a": { "$gte": { "c": 4 } },
  }, 1],
  ["qop_in_1", [{ "a": 0 }, { "a": 1 }], { "a": { "$in": [0] } }, 1],
  [
    "qop_in_11",
    [{ "a": "apple" }],
    { "a": { "$in": [new RegExp("^a", "")] } },
    1,
  ],
  ["qop_in_3", [{ "a": { "1": 5 } }, { "a": [1, 2] }], {
    "a.1": { "$in": [5, 2] },
  }, 2],
  ["qop_in_4", [{ "a": { "b": 5 } }, { "a": { "b": [2] } }], {
    "a.b": { "$in": [5, 2] },
  }, 2],
  [
    "qop_in_6",
    [{ "a": [{ "b": 1 }, { "b": 2 }] }],
    { "a.b": { "$in": [2] } },
    1,
  ],
  ["qop_in_7", [{ "a": [{ "b": 1 }, { "b": 2 }] }], {
    "a.b": { "$in": [true] },
  }, 0],
  ["qop_lt_1", [{ "a": [] }, { "a": 2 }], { "a": { "$lt": [null] } }, 1],
  ["qop_lt_16", [{ "a": [2, 3] }, { "a": 3 }], { "a": { "$lt": 3 } }, 1],
  ["qop_lt_18", [{ "a": [1, 3] }, { "a": 2 }], { "a": { "$lt": [2] } }, 1],
  ["qop_lt_3", [{ "a": 10 }, { "a": "10" }], { "a": { "$lt": "10" } }, 0],
  ["qop_lt_5", [{ "a": 1 }, { "a": false }], { "a": { "$lt": 1 } }, 0],
  ["qop_lt_8", [{ "a": { "b": 4 } }, { "a": { "e": 4 } }], {
    "a": { "$lt": { "c": 4 } },
  }, 1],
  ["qop_lte_1", [{ "a": [] }, { "a": 2 }], { "a": { "$lte": [null] } }, 1],
  ["qop_lte_16", [{ "a": [2, 3] }, { "a": 3 }], { "a": { "$lte": 3 } }, 2],
  ["qop_lte_18", [{ "a": [1, 3] }, { "a": 2 }], { "a": { "$lte": [2] } }, 1],
  ["qop_lte_3", [{ "a": 10 }, { "a": "10" }], { "a": { "$lte": "10" } }, 1],
  ["qop_lte_5", [{ "a": 1 }, { "a": false }], { "a": { "$lte": 1 } }, 1],
  ["qop_lte_8", [{ "a": { "b": 4 } }, { "a": { "e": 4 } }], {
    "a": { "$lte": { "c": 4 } },
  }, 1],
  ["qop_ne_1", [{ "a": 1 }, { "a": 0 }], { "a": { "$ne": 1 } }, 1],
  ["qop_ne_2", [{ "a": [1] }, { "a": 1 }], { "a": { "$ne": 1 } }, 0],
  ["qop_ne_3", [{ "a": [1] }, { "a": [[1], 2] }], { "a": { "$ne": [1] } }, 0],
  [
    "qop_ne_4",
    [{ "a": [2, 1] }, { "a": [1, 2] }, { "a": [[2, 1], 3] }, {
      "a": [[1, 2], 3],
    }],
    { "a": { "$ne": [2, 1] } },
    2,
  ],
  ["qop_nin_1", [{ "a": 0 }, { "a": 1 }], { "a": { "$nin": [0] } }, 1],
  ["qop_nin_11", [{ "a": "banana" }], {
    "a": { "$nin": [new RegExp("^a", "")] },
  }, 1],
  [
    "qop_nin_6",
    [{ "a": [{ "b": 1 }, { "b": 2 }] }, { "a": [{ "b": 3 }, { "b": 4 }] }, {
      "x": 5,
    }],
    { "a.b": { "$nin": [2] } },
    2,
  ],
  ["qop_nin_7", [{ "a": [{ "b": 1 }, { "b": 2 }] }], {
    "a.b": { "$nin": [true] },
  }, 1],
  ["qop_exists_1", [{ "a": 1 }], { "a": { "$exists": 1 } }, 1],
  ["qop_exists_2", [{ "b": 1 }], { "a": { "$exists": 1 } }, 0],
  ["qop_exists_3", [{ "a": [0] }], { "a.0": { "$exists": 0 } }, 0],
  ["qop_exists_4", [{ "a": [0] }], { "a.1": { "$exists": 0 } }, 1],
  ["qop_exists_6", [{ "a": [{ "b": [0] }, { "b": [0, 1] }] }], {
    "a.b.1": { "$exists": 1 },
  }, 1],
  [
    "qop_exists_7",
    [{
      "a": [{
        "b": [{ "c": [0, { "d": [] }] }, { "c": [2, { "d": [3, "y"] }] }],
      }, {
        "b": [{ "c": [10, { "d": [11, "i"] }] }, {
          "c": [12, { "d": [13, "j"] }],
        }],
      }],
    }],
    { "a.b.c.1.d.2": { "$exists": 0 } },
    1,
  ],
  ["qop_type_1", [{ "a": 0.1 }], { "a": { "$type": 1 } }, 1],
  ["qop_type_2", [{ "a": "string" }], { "a": { "$type": 2 } }, 1],
  ["qop_type_23", [{ "a": 1.1 }], { "a": { "$type": "decimal" } }, 0],
  ["qop_type_3", [{ "a": { "doc": "object" } }], { "a": { "$type": 3 } }, 1],
  ["qop_type_32", [{ "a": [1] }], { "a": { "$type": ["array"] } }, 1],
  ["qop_type_9", [{ "a": new Date("1985-11-12T00:00:00Z") }], {
    "a": { "$type": 9 },
  }, 1],
  ["qop_mod_1", [{ "a": 8 }], { "a": { "$mod": [4, 0] } }, 1],
  ["qop_mod_11", [{ "a": 8 }], { "a": { "$mod": [4, 0.5] } }, 1],
  ["qop_mod_13", [{ "a": [{ "b": 5 }, { "b": [8] }] }], {
    "a.b": { "$mod": [4, 0] },
  }, 1],
  ["qop_mod_14", [{ "a": [{ "b": 5 }, { "b": [8] }] }], {
    "a.b": { "$mod": [4, 0] },
  }, 1],
  ["qop_mod_2", [{ "a": [8] }], { "a": { "$mod": [4, 0] } }, 1],
  ["qop_mod_3", [{ "a": [3, [8]] }], { "a": { "$mod": [4, 0] } }, 0],
  ["qop_regex_1", [{ "a": "apple" }], { "a": { "$regex": "^a" } }, 1],
  ["qop_regex_2", [{ "a": "apple" }], {
    "a": { "$regex": "^A", "$options": "i" },
  }, 1],
  ["qop_regex_3", [{ "a": "apple" }, { "a": "abble" }], {
    "a": { "$regex": "^a", "$options": "i", "$nin": ["abble"] },
  }, 1],
  ["qop_regex_5", [{ "a": "apple" }, { "a": "abble" }], {
    "a": { "$regex": new RegExp("^a", ""), "$nin": ["abble"] },
  }, 1],
  ["qop_and_1", [{ "a": 8, "b": 4 }], {
    "$and": [{ "a": { "$gt": 6 } }, { "b": { "$lt": 5 } }],
  }, 1],
  ["qop_and_2", [{ "a": [2, 4, 6], "b": true }, { "a": [0, 1], "b": true }], {
    "$and": [{ "a.2": { "$exists": 1 } }, { "b": true }],
  }, 1],
  ["qop_nor_1", [{ "a": 4, "b": 6 }], {
    "$nor": [{ "a": { "$gt": 6 } }, { "b": { "$lt": 5 } }],
  }, 1],
  ["qop_nor_3", [{ "a": [0, 1] }], {
    "$nor": [{ "a.2": { "$exists": 1 } }, { "b": false }],
  }, 1],
  ["qop_nor_4", [{ "a": [0, 1] }], { "$nor": [{ "a.b": 1 }] }, 1],
  ["qop_not_1", [{ "a": 4 }, { "x": 8 }], { "a": { "$not": { "$eq": 8 } } }, 2],
  [
    "qop_not_2",
    [{ "a": 6 }, { "a": [6] }],
    { "a": { "$not": { "$eq": 6 } } },
    0,
  ],
  ["qop_not_3", [{ "a": [{ "b": 8 }, { "b": 6 }] }], {
    "a.b": { "$not": { "$in": [6] } },
  }, 0],
  ["qop_not_5", [{ "a": "apple" }, { "a": "banana" }], {
    "a": { "$not": new RegExp("^a", "") },
  }, 1],
  ["qop_or_1", [{ "a": 4, "b": 6 }], {
    "$or": [{ "a": { "$gt": 2 } }, { "b": { "$lt": 20 } }],
  }, 1],
  ["qop_or_3", [{ "a": [{ "c": 1 }, { "b": 6 }] }], {
    "$or": [{ "a.c": { "$exists": 0 } }, { "a.b": { "$lt": 8 } }],
  }, 1],
];

/** [name, documents, update, { filter, upsert, arrayFilters }, [index, document after][] or "error"] */
const UPDATE_CASES: [string, Doc[], Doc, Doc, [number, Doc][] | "error"][] = [
  [
    "update_array_faild_1",
    [{ "a": [{ "1": 4 }] }],
    { "$inc": { "a.1.$[]": 1 } },
    {},
    "error",
  ],
  [
    "update_positional",
    [{ "a": [{ "b": 3, "c": 1 }, { "b": 4, "c": 0 }] }],
    { "$inc": { "a.$.b": 1 } },
    { "filter": { "a.b": 4 } },
    [[0, { "a": [{ "b": 3, "c": 1 }, { "b": 5, "c": 0 }] }]],
  ],
  [
    "update_positional_filtered_err_3",
    [{ "a": [{ "b": 4, "c": 1 }, { "b": 5, "c": 1 }] }],
    { "$inc": { "a.$[elem].b": 1 } },
    { "arrayFilters": [{ "elem.b": { "$gt": 4 } }, { "other": { "$gt": 4 } }] },
    "error",
  ],
  [
    "update_positional_filtered_has_conflict_2",
    [{ "a": [{ "c": 5, "b": 1 }, { "c": 8, "b": 0 }] }],
    { "$set": { "a.$[elem]": 5, "a.$[conflict]": 5 } },
    { "arrayFilters": [{ "elem.c": 5 }, { "conflict.b": 1 }] },
    "error",
  ],
  [
    "update_rename_conflict_2",
    [{ "a": { "b": "some" }, "d": { "e": 5 } }],
    { "$rename": { "a.b": "c.b.f", "d.e": "c.b" } },
    {},
    "error",
  ],
  [
    "update_with_empty_field_2",
    [{ "": 1 }],
    { "$inc": { ".": 5 } },
    {},
    "error",
  ],
  ["update_addToSet_1", [{ "a": [1, 2] }], { "$addToSet": { "a": 3 } }, {}, [[
    0,
    { "a": [1, 2, 3] },
  ]]],
  ["update_addToSet_2", [{ "a": [1, 2] }], { "$addToSet": { "a": [3] } }, {}, [[
    0,
    { "a": [1, 2, [3]] },
  ]]],
  ["update_addToSet_3", [{}], { "$addToSet": { "a": 3 } }, {}, [[0, {
    "a": [3],
  }]]],
  [
    "update_addToSet_4",
    [{ "a": null }],
    { "$addToSet": { "a": 3 } },
    {},
    "error",
  ],
  ["update_addToSet_5", [{ "a": [1, 2, 3] }], { "$addToSet": { "a": 3 } }, {}, [
    [0, { "a": [1, 2, 3] }],
  ]],
  [
    "update_currentDate_5",
    [{ "a": null }],
    { "$currentDate": { "a": 1 } },
    {},
    "error",
  ],
  [
    "update_currentDate_6",
    [{ "a": null }],
    { "$currentDate": { "a": { "not_op": true } } },
    {},
    "error",
  ],
  [
    "update_currentDate_7",
    [{ "a": null }],
    { "$currentDate": { "a": { "$type": "not date nor timestamp" } } },
    {},
    "error",
  ],
  ["update_inc_1", [{ "a": 1 }], { "$inc": { "a": 1 } }, {}, [[0, { "a": 2 }]]],
  ["update_inc_3", [{ "a": 1 }], { "$inc": { "a": "1" } }, {}, "error"],
  [
    "update_inc_7",
    [{ "a": [{ "b": 0 }, { "b": 1 }] }],
    { "$inc": { "a.b": 1 } },
    {},
    "error",
  ],
  ["update_inc_bool", [{ "a": true }], { "$inc": { "a": 1 } }, {}, "error"],
  [
    "update_inc_positional_all_1",
    [{ "a": [{ "b": 3 }, { "b": 4 }] }],
    { "$inc": { "a.$[].b": 1 } },
    {},
    [[0, { "a": [{ "b": 4 }, { "b": 5 }] }]],
  ],
  [
    "update_inc_positional_filtered_3",
    [{ "a": [5, 2] }],
    { "$inc": { "a.$[elem]": 10 } },
    { "arrayFilters": [{ "elem": { "$lt": 4 } }] },
    [[0, { "a": [5, 12] }]],
  ],
  ["update_max_1", [{ "a": 1 }], { "$max": { "a": 10 } }, {}, [[0, {
    "a": 10,
  }]]],
  ["update_max_3", [{ "a": null }], { "$max": { "a": true } }, {}, [[0, {
    "a": true,
  }]]],
  [
    "update_max_5",
    [{ "a": new Date("1998-08-22T00:00:00Z") }],
    { "$max": { "a": new Date("1000-08-22T00:00:00Z") } },
    {},
    [[0, { "a": new Date("1998-08-22T00:00:00Z") }]],
  ],
  ["update_max_7", [{ "a": null }], { "$max": { "a": [] } }, {}, [[0, {
    "a": [],
  }]]],
  ["update_max_8", [{}], { "$max": { "a": null } }, {}, [[0, { "a": null }]]],
  ["update_min_1", [{ "a": 1 }], { "$min": { "a": 0 } }, {}, [[0, { "a": 0 }]]],
  [
    "update_min_3",
    [{ "a": { "b": 5 }, "0": null }],
    { "$min": { "a": { "b": 3 } } },
    {},
    [[0, { "a": { "b": 3 }, "0": null }]],
  ],
  [
    "update_min_5",
    [{ "a": new Date("1998-08-22T00:00:00Z") }],
    { "$min": { "a": new Date("1000-08-22T00:00:00Z") } },
    {},
    [[0, { "a": new Date("1000-08-22T00:00:00Z") }]],
  ],
  ["update_min_7", [{ "a": null }], { "$min": { "a": [] } }, {}, [[0, {
    "a": null,
  }]]],
  ["update_min_8", [{}], { "$min": { "a": null } }, {}, [[0, { "a": null }]]],
  [
    "update_mod_each_3",
    [{ "a": [10] }],
    { "$push": { "a": { "$set": [5], "$each": [20, 30, 10] } } },
    {},
    "error",
  ],
  [
    "update_mod_each_4",
    [{ "a": [10] }],
    { "$addToSet": { "a": { "$each": [5], "$sort": 1 } } },
    {},
    "error",
  ],
  [
    "update_mod_each_5",
    [{ "a": [10] }],
    { "$addToSet": { "a": { "$sort": 1, "$each": [5] } } },
    {},
    "error",
  ],
  [
    "update_mod_each_6",
    [{ "a": [10] }],
    { "$addToSet": { "a": { "$each": null } } },
    {},
    "error",
  ],
  [
    "update_mod_each_7",
    [{ "a": [10] }],
    { "$push": { "a": { "$each": null } } },
    {},
    "error",
  ],
  [
    "update_mod_position_4",
    [{ "a": [10, 20, 30] }],
    { "$addToSet": { "a": { "$each": [70, 30, 80], "$position": 2 } } },
    {},
    "error",
  ],
  [
    "update_mod_position_5",
    [{ "a": [10, 20, 30] }],
    { "$push": { "a": { "$each": [70, 80], "$position": true } } },
    {},
    "error",
  ],
  [
    "update_mod_slice_6",
    [{ "a": [10] }],
    { "$push": { "a": { "$each": [], "$slice": true } } },
    {},
    "error",
  ],
  [
    "update_mod_sort_5",
    [{ "a": [10, 20, 60] }],
    { "$push": { "a": { "$each": [], "$sort": [] } } },
    {},
    "error",
  ],
  [
    "update_mod_sort_6",
    [{ "a": [10, 20, 60] }],
    { "$push": { "a": { "$each": [], "$sort": 2 } } },
    {},
    "error",
  ],
  [
    "update_mod_sort_8",
    [{ "a": [{ "x": 5, "y": 1 }, { "x": 4, "y": 2 }, { "x": 4, "y": 0 }] }],
    { "$push": { "a": { "$each": [], "$sort": { "x": 3, "y": 1 } } } },
    {},
    "error",
  ],
  [
    "update_mod_sort_9",
    [{ "a": [{ "x": 5, "y": 1 }, { "x": 4, "y": 2 }, { "x": 4, "y": 0 }] }],
    { "$push": { "a": { "$each": [], "$sort": { "x": { "z": 1 }, "y": 1 } } } },
    {},
    "error",
  ],
  ["update_mul_1", [{ "a": 1 }], { "$mul": { "a": 2 } }, {}, [[0, { "a": 2 }]]],
  ["update_mul_3", [{ "a": 1 }], { "$mul": { "a": "2" } }, {}, "error"],
  [
    "update_mul_7",
    [{ "a": [{ "b": 0 }, { "b": 1 }] }],
    { "$mul": { "a.b": 2 } },
    {},
    "error",
  ],
  ["update_mul_bool", [{ "a": true }], { "$mul": { "a": 2 } }, {}, "error"],
  [
    "update_mul_positional_all_1",
    [{ "a": [{ "b": 3 }, { "b": 4 }] }],
    { "$mul": { "a.$[].b": 2 } },
    {},
    [[0, { "a": [{ "b": 6 }, { "b": 8 }] }]],
  ],
  [
    "update_mul_positional_filtered_3",
    [{ "a": [5, 2] }],
    { "$mul": { "a.$[elem]": 10 } },
    { "arrayFilters": [{ "elem": { "$lt": 4 } }] },
    [[0, { "a": [5, 20] }]],
  ],
  ["update_pop_1", [{ "a": [1, 2, 3] }], { "$pop": { "a": 1 } }, {}, [[0, {
    "a": [1, 2],
  }]]],
  ["update_pop_2", [{ "a": [1, 2, 3] }], { "$pop": { "a": -1 } }, {}, [[0, {
    "a": [2, 3],
  }]]],
  ["update_pop_3", [], { "$pop": { "a": 3 } }, {}, "error"],
  [
    "update_pop_6",
    [{ "a": { "b": "not array" } }],
    { "$pop": { "a.b": 1 } },
    {},
    "error",
  ],
  ["update_pop_7", [{ "a": [] }], { "$pop": { "a": true } }, {}, "error"],
  ["update_pop_8", [{}], { "$pop": { "a": 1 } }, {}, [[0, {}]]],
  ["update_pull_1", [{ "a": [1, 2, 3] }], { "$pull": { "a": 1 } }, {}, [[0, {
    "a": [2, 3],
  }]]],
  [
    "update_pull_11",
    [{ "a": [{ "i": "A", "s": 5 }, { "i": "B", "s": 8, "c": "blah" }] }],
    { "$pull": { "a": { "$elemMatch": { "s": 8, "i": "B" } } } },
    {},
    [[0, { "a": [{ "i": "A", "s": 5 }, { "i": "B", "s": 8, "c": "blah" }] }]],
  ],
  ["update_pull_2", [{ "a": null }], { "$pull": { "a": 3 } }, {}, "error"],
  ["update_pull_3", [{}], { "$pull": { "a": 1 } }, {}, [[0, {}]]],
  [
    "update_pull_5",
    [{ "a": [{ "b": 1, "c": 1 }, { "c": 1, "b": 1 }] }],
    { "$pull": { "a": { "b": 1, "c": 1 } } },
    {},
    [[0, { "a": [] }]],
  ],
  [
    "update_pull_9",
    [{ "a": ["q", "w", "e", "r"], "b": ["z", "x", "c", "v"] }],
    { "$pull": { "a": { "$in": ["e", "w"] }, "b": "x" } },
    {},
    [[0, { "a": ["q", "r"], "b": ["z", "c", "v"] }]],
  ],
  [
    "update_pullAll_1",
    [{ "a": [1, 2, 1, 3] }],
    { "$pullAll": { "a": [1] } },
    {},
    [[0, { "a": [2, 3] }]],
  ],
  [
    "update_pullAll_2",
    [{ "a": null }],
    { "$pullAll": { "a": [1] } },
    {},
    "error",
  ],
  [
    "update_pullAll_3",
    [{ "a": [1, 2] }],
    { "$pullAll": { "a": 1 } },
    {},
    "error",
  ],
  ["update_pullAll_4", [{}], { "$pullAll": { "a": [1, 2] } }, {}, [[0, {}]]],
  ["update_push_1", [{ "a": [1, 2, 3] }], { "$push": { "a": 1 } }, {}, [[0, {
    "a": [1, 2, 3, 1],
  }]]],
  ["update_push_2", [{ "a": null }], { "$push": { "a": 3 } }, {}, "error"],
  ["update_push_3", [{}], { "$push": { "a": 1 } }, {}, [[0, { "a": [1] }]]],
  ["update_rename_1", [{ "a": 1 }], { "$rename": { "a": "b" } }, {}, [[0, {
    "b": 1,
  }]]],
  [
    "update_rename_11",
    [{ "a": [{ "b": "some" }] }],
    { "$rename": { "a.0.b": "a" } },
    {},
    "error",
  ],
  ["update_rename_3", [{ "a": [1, 2] }], { "$rename": { "a": "b" } }, {}, [[0, {
    "b": [1, 2],
  }]]],
  [
    "update_rename_5",
    [{ "a": [1, { "b": 8 }] }],
    { "$rename": { "a.1.b": "b" } },
    {},
    "error",
  ],
  [
    "update_rename_7",
    [{ "a": { "b": "some" }, "c": [] }],
    { "$rename": { "a.b": "c.0" } },
    {},
    "error",
  ],
  [
    "update_rename_9",
    [{ "a": { "b": 8 } }],
    { "$rename": { "a.b": "b" } },
    {},
    [[0, { "a": {}, "b": 8 }]],
  ],
  ["update_set_1", [{ "a": 1 }], { "$set": { "a": { "b": 1 } } }, {}, [[0, {
    "a": { "b": 1 },
  }]]],
  [
    "update_set_2",
    [{ "a": "some", "b": "happy", "c": "value" }],
    { "$set": { "a": "one", "c": "boy" } },
    {},
    [[0, { "a": "one", "b": "happy", "c": "boy" }]],
  ],
  ["update_set_3", [{ "a": [1, 2] }], { "$set": { "a": null } }, {}, [[0, {
    "a": null,
  }]]],
  [
    "update_set_4",
    [{ "a": { "b": "some" } }],
    { "$set": { "a.b": "one" } },
    {},
    [[0, { "a": { "b": "one" } }]],
  ],
  [
    "update_set_5",
    [{ "a": [1, { "b": 8 }] }],
    { "$set": { "a.0": "one", "a.1.b": 12 } },
    {},
    [[0, { "a": ["one", { "b": 12 }] }]],
  ],
  ["update_setOnInsert_1", [], { "$setOnInsert": { "a.$[]": 10 } }, {
    "filter": { "a": [1] },
    "upsert": true,
  }, [[0, { "a": [10] }]]],
  [
    "update_setOnInsert_2",
    [],
    { "$set": { "a": 9 }, "$setOnInsert": { "b": 0 } },
    { "filter": { "a": { "$exists": 1 } }, "upsert": true },
    [[0, { "a": 9, "b": 0 }]],
  ],
  [
    "update_setOnInsert_3",
    [{ "a": 4 }],
    { "$set": { "a": 9 }, "$setOnInsert": { "b": 0 } },
    { "filter": { "a": { "$exists": 1 } }, "upsert": true },
    [[0, { "a": 9 }]],
  ],
  ["update_unset_1", [{ "a": 1 }], { "$unset": { "a": "" } }, {}, [[0, {}]]],
  [
    "update_unset_2",
    [{ "a": "some", "b": "happy", "c": "value" }],
    { "$unset": { "a": "", "c": "" } },
    {},
    [[0, { "b": "happy" }]],
  ],
  ["update_unset_3", [{ "a": [1, 2] }], { "$unset": { "a.0": "" } }, {}, [[0, {
    "a": [null, 2],
  }]]],
  ["update_unset_4", [{ "a": [1, 2] }], { "$unset": { "a.3": "" } }, {}, [[0, {
    "a": [1, 2],
  }]]],
  [
    "update_unset_5",
    [{ "a": { "b": "some" } }],
    { "$unset": { "a.b": "" } },
    {},
    [[0, { "a": {} }]],
  ],
  [
    "update_unset_6",
    [{ "a": [1, { "b": 8 }] }],
    { "$unset": { "a.0": "", "a.1.b": "" } },
    {},
    [[0, { "a": [null, {}] }]],
  ],
];

/** Keys that sort the documents in insertion order, before generated ids. */
const id = (i: number): string => `!${String(i).padStart(3, "0")}`;

Deno.test(`montydb filter cases (${FIND_CASES.length}) agree with mongod's answers`, async () => {
  for (const [name, docs, filter, want] of FIND_CASES) {
    await using db = await open();
    const c = db.collection<Doc>("test");
    await c.insertMany(docs.map((d, i) => ({ ...d, _id: id(i) })));
    if (want === "error") {
      await assert.rejects(
        (async () => await c.find(filter).count())(),
        (e: unknown) => e instanceof TypeError || e instanceof RangeError,
        name,
      );
    } else {
      assert.equal(await c.find(filter).count(), want, name);
    }
  }
});

Deno.test(`montydb update cases (${UPDATE_CASES.length}) agree with mongod's answers`, async () => {
  for (const [name, docs, update, options, want] of UPDATE_CASES) {
    await using db = await open();
    const c = db.collection<Doc>("test");
    await c.insertMany(docs.map((d, i) => ({ ...d, _id: id(i) })));
    const { filter = {}, ...rest } = options;
    const run = () => c.updateMany(filter as Doc, update, rest as never);
    if (want === "error") {
      await assert.rejects(
        run(),
        (e: unknown) => e instanceof TypeError || e instanceof RangeError,
        name,
      );
      continue;
    }
    await run();
    const after = await c.find({}, { sort: { _id: 1 }, fields: { _id: 0 } })
      .toArray();
    for (const [i, doc] of want) assert.deepEqual(after[i], doc, name);
  }
});
