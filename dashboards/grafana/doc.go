// Package grafana holds dmarcd's Grafana dashboards for the ClickHouse store
// (dashboards/*.json, for the grafana-clickhouse-datasource plugin) and the
// provisioning files that install them (provisioning/); README.md says how
// to use them. It has no Go code: its tests check the dashboards' structure
// and run every panel's SQL, with the plugin's macros and the dashboard
// variables expanded as Grafana would, against a real ClickHouse filled
// with the report corpus and the repository's samples.
package grafana
