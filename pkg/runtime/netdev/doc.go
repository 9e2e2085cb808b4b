// Package netdev moves network devices into a container's network
// namespace (linux.netDevices), over rtnetlink. It is written on
// golang.org/x/sys/unix alone, without a netlink library: those import
// package net, whose initialisation every xrunc process (the container's
// init included) would pay for a feature few containers use.
package netdev
