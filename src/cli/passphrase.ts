/**
 * Asking a terminal for a passphrase, without echo.
 *
 * @module
 */

import { CliError, ExitCode } from "./exit.ts";

const encoder = new TextEncoder();

/**
 * Reads a passphrase from the terminal in raw mode, without echo.
 *
 * @param message The prompt, written to stderr.
 * @returns The passphrase, or `null` when none was given (Ctrl-D, end of
 *   input).
 */
export async function promptTerminal(message: string): Promise<string | null> {
  await Deno.stderr.write(encoder.encode(message));
  const bytes: number[] = [];
  const buffer = new Uint8Array(256);
  Deno.stdin.setRaw(true);
  try {
    read: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) return bytes.length === 0 ? null : decode(bytes);
      for (const b of buffer.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) break read; // Enter
        if (b === 0x03) throw new CliError(130, "interrupted"); // Ctrl-C
        if (b === 0x04) { // Ctrl-D
          if (bytes.length === 0) return null;
          break read;
        }
        if (b === 0x7f || b === 0x08) { // Backspace: one UTF-8 character
          while (bytes.length > 0 && ((bytes.pop()! & 0xc0) === 0x80));
          continue;
        }
        if (b === 0x15) { // Ctrl-U
          bytes.length = 0;
          continue;
        }
        if (b < 0x20) continue;
        bytes.push(b);
      }
    }
    return decode(bytes);
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
}

function decode(bytes: number[]): string {
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Asks for a new passphrase twice; both must match.
 *
 * @param prompt Asks once.
 * @param what For the prompts: `'app.tdb'`.
 * @returns The passphrase.
 * @throws {CliError} Exit 77 when none is given or the two differ.
 */
export async function askNew(
  prompt: (message: string) => Promise<string | null>,
  what: string,
): Promise<string> {
  const first = await prompt(`New passphrase for ${what}: `);
  if (first === null || first === "") {
    throw new CliError(ExitCode.WrongKey, "no passphrase given");
  }
  const second = await prompt(`The same passphrase again: `);
  if (second !== first) {
    throw new CliError(ExitCode.WrongKey, "the two passphrases differ");
  }
  return first;
}
