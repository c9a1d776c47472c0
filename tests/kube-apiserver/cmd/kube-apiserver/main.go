// Command kube-apiserver is the upstream API server, started exactly as
// k8s.io/kubernetes/cmd/kube-apiserver starts it. It lives in this module so that
// the release it is built from is pinned in go.mod and go.sum.
package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
