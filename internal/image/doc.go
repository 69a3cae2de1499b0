// Package image holds the test of tokend's container image: it builds the
// repository's Containerfile with podman, runs the image and checks it as a
// user would (image_test.go), and runs compose.yaml with podman-compose
// (compose_run_test.go). It has no code of its own; it is a package of
// its own so that the image's build, minutes of compiling, runs beside
// cmd/tokend's tests rather than inside their time limit.
package image
