// SPDX-License-Identifier: GPL-3.0-or-later

// Package gptimage builds small GPT disk images in memory for tests: valid
// ones that sgdisk accepts, and, by editing the bytes and resealing the CRCs,
// the broken and hostile layouts the seed sector check must refuse.
package gptimage
