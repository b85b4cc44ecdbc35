// SPDX-License-Identifier: GPL-3.0-or-later

// Package protocol is the contract between the vmtest host and the guest
// init: the scenario language the host hands to the guest, and the event
// lines the guest prints on the serial console for the host to parse.
//
// Both sides import it, so a scenario is checked on the host before a
// several-second boot, and the guest formats events exactly as the host
// parses them. See package vmtest for the scenario syntax.
package protocol
