// Command etcd is etcd's own command line (etcdmain), at the version the pinned
// Kubernetes release selects for its storage client.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
