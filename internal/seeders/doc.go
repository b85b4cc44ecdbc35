// SPDX-License-Identifier: GPL-3.0-or-later

// Package seeders carries a random seed across boots on the boot medium and
// hands it to the kernel without ever crediting a seed twice.
//
// The pieces, from the bottom up:
//
//   - Record is the on-medium seed format (docs/seed-format.md): magic,
//     version, a "creditable" flag, a generation counter, 32 seed bytes and a
//     SHA-256 checksum. ParseRecord tells a foreign or empty location
//     (ErrNotRecord) from a torn record of ours (ErrChecksum, ErrVersion).
//     NextRecord derives a replacement from the old seed, fresh kernel
//     randomness, clocks and the boot id, so a new seed never regresses.
//   - Binding ties a record to the medium it was written for (disk and
//     partition GUIDs, disk size, the serial number sysfs shows, or a seed
//     file's inode); a record found anywhere else is never credited, so a
//     copied stick or a restored seed file cannot credit a seed twice.
//     A record written on a published image's disk is credited only after
//     Tails' first boot has given the disk GUIDs of its own.
//   - CheckLayout decides from the partition tables alone whether a raw
//     sector of a disk is provably unused (DESIGN rule 5); Classify decides
//     whether its current content is ours to replace.
//   - SectorBackend, FATBackend, FileBackend and CmdlineBackend read and
//     write one seed location each, and re-check safety on a fresh read
//     before every write, including that the location is still the one
//     Load read (the Load's observation travels with the record NextRecord
//     derives from it). FATBackend and CmdlineBackend remount the boot
//     medium read-write only while they replace a file, and read-only again
//     on every path (Mounts). SystemMounts finds the boot medium's disk.
//   - Seeder runs the protocol for one backend: load, write and verify the
//     replacement, and only then credit the old seed to the kernel (DESIGN
//     rule 2); otherwise mix it at most.
//   - EditBootConfig sets a token on the kernel lines of a syslinux or GRUB
//     configuration without touching anything else; CmdlineBackend uses it
//     on the small token files the bootloader configurations include,
//     which it overwrites in place, for a command-line seed (which is
//     world-readable, so only ever mixed).
//
// Seed bytes are never printable: Record and Loaded keep them behind
// pointers that fmt prints as addresses, and their String, Format and JSON
// forms leave them out.
package seeders
