//go:build linux

package main

import "syscall"

// dieWithParent makes the kernel kill a server when the thread that started it (this
// program's locked main thread) exits, even when this program is killed with SIGKILL.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
