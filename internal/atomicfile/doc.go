// SPDX-License-Identifier: GPL-3.0-or-later

// Package atomicfile replaces small files atomically, for the runtime and
// history files readers may open at any moment: they see the old content
// or the new, never a mix. (Seed files on the boot medium have stricter
// rules of their own: see seeders.)
package atomicfile
