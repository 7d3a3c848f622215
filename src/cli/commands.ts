/**
 * Every command, by name, in the order `help` lists them.
 *
 * @module
 */

import { backup } from "./backup.ts";
import type { Command } from "./command.ts";
import { compact } from "./compact.ts";
import { count } from "./count.ts";
import { deleteCommand } from "./delete.ts";
import { exportCommand } from "./export.ts";
import { find } from "./find.ts";
import { follow } from "./follow.ts";
import { get } from "./get.ts";
import { importCommand } from "./import.ts";
import { indexes } from "./indexes.ts";
import { info } from "./info.ts";
import { put } from "./put.ts";
import { rekey } from "./rekey.ts";
import { repairCommand } from "./repair.ts";
import { restore } from "./restore.ts";
import { stats } from "./stats.ts";
import { verify } from "./verify.ts";

/** The commands. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  info,
  stats,
  get,
  find,
  count,
  put,
  delete: deleteCommand,
  indexes,
  export: exportCommand,
  import: importCommand,
  follow,
  backup,
  restore,
  verify,
  compact,
  repair: repairCommand,
  rekey,
};
