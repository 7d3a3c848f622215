/**
 * The MongoDB Manual's examples for $bucket, $sortByCount and $dateTrunc in
 * a pipeline, ported by hand: the Manual's documents, stages and results.
 * (The Manual's `_id`s are numbers; a collection's are strings here.)
 */
import assert from "node:assert/strict";
import { open } from "../mod.ts";

const ARTISTS = [
  [1, "Bernard", "Emil", 1868, 1941, "France"],
  [2, "Rippl-Ronai", "Joszef", 1861, 1927, "Hungary"],
  [3, "Ostroumova", "Anna", 1871, 1955, "Russia"],
  [4, "Van Gogh", "Vincent", 1853, 1890, "Holland"],
  [5, "Maurer", "Alfred", 1868, 1932, "USA"],
  [6, "Munch", "Edvard", 1863, 1944, "Norway"],
  [7, "Redon", "Odilon", 1840, 1916, "France"],
  [8, "Diriks", "Edvard", 1855, 1930, "Norway"],
].map(([id, last_name, first_name, year_born, year_died, nationality]) => ({
  _id: String(id),
  last_name,
  first_name,
  year_born,
  year_died,
  nationality,
}));

Deno.test("Manual $bucket: artists by birth decade, with output and a $match", async () => {
  await using db = await open();
  const artists = db.collection<Record<string, unknown>>("artists");
  await artists.insertMany(ARTISTS);
  const bucket = {
    $bucket: {
      groupBy: "$year_born",
      boundaries: [1840, 1850, 1860, 1870, 1880],
      default: "Other",
      output: {
        count: { $sum: 1 },
        artists: {
          $push: {
            name: { $concat: ["$first_name", " ", "$last_name"] },
            year_born: "$year_born",
          },
        },
      },
    },
  };
  assert.deepEqual(
    await artists.aggregate([bucket, { $match: { count: { $gt: 3 } } }])
      .toArray(),
    [{
      _id: 1860,
      count: 4,
      artists: [
        { name: "Emil Bernard", year_born: 1868 },
        { name: "Joszef Rippl-Ronai", year_born: 1861 },
        { name: "Alfred Maurer", year_born: 1868 },
        { name: "Edvard Munch", year_born: 1863 },
      ],
    }],
  );
  // Without the $match: every bucket that holds a document, in boundary
  // order (no "Other": every year falls in a bucket).
  const all = await artists.aggregate([bucket]).toArray();
  assert.deepEqual(all.map((b) => [b._id, b.count]), [
    [1840, 1],
    [1850, 2],
    [1860, 4],
    [1870, 1],
  ]);
  assert.deepEqual(all[1]!.artists, [
    { name: "Vincent Van Gogh", year_born: 1853 },
    { name: "Edvard Diriks", year_born: 1855 },
  ]);
});

Deno.test("Manual $sortByCount: exhibit tags after $unwind", async () => {
  await using db = await open();
  const exhibits = db.collection<Record<string, unknown>>("exhibits");
  await exhibits.insertMany([
    {
      _id: "1",
      title: "The Pillars of Society",
      artist: "Grosz",
      year: 1926,
      tags: ["painting", "satire", "Expressionism", "caricature"],
    },
    {
      _id: "2",
      title: "Melancholy III",
      artist: "Munch",
      year: 1902,
      tags: ["woodcut", "Expressionism"],
    },
    {
      _id: "3",
      title: "Dancer",
      artist: "Miro",
      year: 1925,
      tags: ["oil", "Surrealism", "painting"],
    },
    {
      _id: "4",
      title: "The Great Wave off Kanagawa",
      artist: "Hokusai",
      tags: ["woodblock", "ukiyo-e"],
    },
    {
      _id: "5",
      title: "The Persistence of Memory",
      artist: "Dali",
      year: 1931,
      tags: ["Surrealism", "painting", "oil"],
    },
    {
      _id: "6",
      title: "Composition VII",
      artist: "Kandinsky",
      year: 1913,
      tags: ["oil", "painting", "abstract"],
    },
    {
      _id: "7",
      title: "The Scream",
      artist: "Munch",
      year: 1893,
      tags: ["Expressionism", "painting", "oil"],
    },
    {
      _id: "8",
      title: "Blue Flower",
      artist: "O'Keefe",
      year: 1918,
      tags: ["abstract", "painting"],
    },
  ]);
  const rows = await exhibits.aggregate([
    { $unwind: "$tags" },
    { $sortByCount: "$tags" },
  ]).toArray();
  // The Manual's result; MongoDB leaves the order of equal counts open, so
  // each run of equal counts is compared as a set.
  const want: [string, number][] = [
    ["painting", 6],
    ["oil", 4],
    ["Expressionism", 3],
    ["Surrealism", 2],
    ["abstract", 2],
    ["woodblock", 1],
    ["woodcut", 1],
    ["ukiyo-e", 1],
    ["satire", 1],
    ["caricature", 1],
  ];
  assert.deepEqual(rows.map((r) => r.count), want.map(([, n]) => n));
  const byCount = (xs: [unknown, unknown][]) =>
    xs.map(([id, n]) => `${n}:${id}`).sort();
  assert.deepEqual(
    byCount(rows.map((r) => [r._id, r.count])),
    byCount(want),
  );
});

const CAKE_SALES = [
  {
    _id: "0",
    type: "chocolate",
    orderDate: new Date("2020-05-18T14:10:30Z"),
    state: "CA",
    price: 13,
    quantity: 120,
  },
  {
    _id: "1",
    type: "chocolate",
    orderDate: new Date("2021-03-20T11:30:05Z"),
    state: "WA",
    price: 14,
    quantity: 140,
  },
  {
    _id: "2",
    type: "vanilla",
    orderDate: new Date("2021-01-11T06:31:15Z"),
    state: "CA",
    price: 12,
    quantity: 145,
  },
  {
    _id: "3",
    type: "vanilla",
    orderDate: new Date("2020-02-08T13:13:23Z"),
    state: "WA",
    price: 13,
    quantity: 104,
  },
  {
    _id: "4",
    type: "strawberry",
    orderDate: new Date("2019-05-18T16:09:01Z"),
    state: "CA",
    price: 41,
    quantity: 162,
  },
  {
    _id: "5",
    type: "strawberry",
    orderDate: new Date("2019-01-08T06:12:03Z"),
    state: "WA",
    price: 43,
    quantity: 134,
  },
];

Deno.test("Manual $dateTrunc: cake sales in six-month bins, and weeks starting Monday", async () => {
  await using db = await open();
  const sales = db.collection<Record<string, unknown>>("cakeSales");
  await sales.insertMany(CAKE_SALES);
  const bins = await sales.aggregate([
    {
      $group: {
        _id: {
          truncatedOrderDate: {
            $dateTrunc: { date: "$orderDate", unit: "month", binSize: 6 },
          },
        },
        sumQuantity: { $sum: "$quantity" },
      },
    },
    { $sort: { "_id.truncatedOrderDate": -1 } },
  ]).toArray();
  assert.deepEqual(bins, [
    {
      _id: { truncatedOrderDate: new Date("2021-01-01T00:00:00Z") },
      sumQuantity: 285,
    },
    {
      _id: { truncatedOrderDate: new Date("2020-01-01T00:00:00Z") },
      sumQuantity: 224,
    },
    {
      _id: { truncatedOrderDate: new Date("2019-01-01T00:00:00Z") },
      sumQuantity: 296,
    },
  ]);
  // The Manual's $project example: weeks that start on Monday, in binSize 1.
  const weeks = await sales.aggregate([
    { $match: { _id: { $in: ["0", "1"] } } },
    {
      $project: {
        _id: 1,
        orderDate: 1,
        truncatedOrderDate: {
          $dateTrunc: {
            date: "$orderDate",
            unit: "week",
            binSize: 2,
            // The Manual says "America/Los_Angeles"; named zones are not
            // supported (a TypeError, below), and both dates are in PDT.
            timezone: "-07:00",
            startOfWeek: "Monday",
          },
        },
      },
    },
  ]).toArray();
  assert.deepEqual(weeks.map((w) => w.truncatedOrderDate), [
    new Date("2020-05-11T07:00:00Z"),
    new Date("2021-03-15T07:00:00Z"),
  ]);
  assert.throws(
    () =>
      sales.aggregate([{
        $project: {
          t: {
            $dateTrunc: {
              date: "$orderDate",
              unit: "week",
              timezone: "America/Los_Angeles",
            },
          },
        },
      }]),
    TypeError,
  );
});
