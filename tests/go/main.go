// The AWS SDK for Go v2 client of credd's end-to-end tests (tests/src/sdk.rs builds it once into
// target/go-sdk-client). It loads the default config as a tool would (config.LoadDefaultConfig:
// environment, shared files, credential_process, the container route, IMDS), then asks STS who it
// is at AWS_ENDPOINT_URL_STS.
//
//	go-sdk-client         one call: prints one JSON line and exits 0 (1 with the error on stderr)
//	go-sdk-client follow  one SDK config for the whole process, one call per line read on
//	                      stdin, one JSON line each ({"error": ...} when a call fails)
//
// A line is {"arn", "provider" (aws.Credentials.Source), "expiry" (Unix seconds or null),
// "account_id" (the AccountID the credentials carry, "" when none)}.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Bounds every call, so a hung daemon fails the test instead of hanging it.
const callTimeout = 20 * time.Second

type answer struct {
	Arn       string `json:"arn"`
	Provider  string `json:"provider"`
	Expiry    *int64 `json:"expiry"`
	AccountID string `json:"account_id"`
}

type client struct {
	cfg aws.Config
	sts *sts.Client
}

func newClient() (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithDefaultRegion("us-east-1"))
	if err != nil {
		return nil, fmt.Errorf("load the default config: %w", err)
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_STS")
	if endpoint == "" {
		return nil, fmt.Errorf("AWS_ENDPOINT_URL_STS is not set")
	}
	stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	return &client{cfg: cfg, sts: stsClient}, nil
}

func (c *client) call() (*answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	identity, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("GetCallerIdentity: %w", err)
	}
	// The cache the call just used: the same credentials, no new fetch.
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	out := &answer{Arn: aws.ToString(identity.Arn), Provider: creds.Source, AccountID: creds.AccountID}
	if creds.CanExpire {
		at := creds.Expires.Unix()
		out.Expiry = &at
	}
	return out, nil
}

func main() {
	follow := len(os.Args) == 2 && os.Args[1] == "follow"
	if len(os.Args) > 1 && !follow {
		fmt.Fprintln(os.Stderr, "usage: go-sdk-client [follow]")
		os.Exit(2)
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-sdk-client:", err)
		os.Exit(1)
	}
	if !follow {
		out, err := c.call()
		if err != nil {
			fmt.Fprintln(os.Stderr, "go-sdk-client:", err)
			os.Exit(1)
		}
		line, _ := json.Marshal(out)
		fmt.Println(string(line))
		return
	}
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		var line []byte
		if out, err := c.call(); err != nil {
			line, _ = json.Marshal(map[string]string{"error": err.Error()})
		} else {
			line, _ = json.Marshal(out)
		}
		fmt.Println(string(line))
	}
}
