// Package sdk holds tokend's SDKs for other languages than Go (the Go SDK
// is package client): sdk/typescript, the npm package @tokend/sdk, and
// sdk/python, the Python package tokend. It has no Go code of its own; its
// test runs both SDKs' suites against a tokend built from this tree, so
// that the README's one test command covers them.
package sdk
