//go:build !linux

package main

import "syscall"

// dieWithParent has no kernel support outside Linux: the servers are stopped on stdin
// EOF or a signal, but not when this program itself is killed with SIGKILL.
func dieWithParent() *syscall.SysProcAttr {
	return nil
}
