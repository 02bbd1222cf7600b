// HR console: the departure analytics dashboard. Draws every chart of the page's embedded data
// (#analytics-data, the same numbers as getDepartureAnalytics) with the vendored Apache ECharts.
// Suppressed numbers are null: no bar is drawn and the tooltip says "*（已隐藏）".
// CSP-safe: no inline script or style, tooltips rendered on the canvas (renderMode richText).
"use strict";
(function () {
  const SUPPRESSED = "*（已隐藏）";

  function fmt(v, share) {
    if (v === null || v === undefined) return SUPPRESSED;
    return share ? (v * 100).toFixed(1) + "%" : String(v);
  }

  function base(extra) {
    return Object.assign({
      animation: false,
      color: ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"],
      textStyle: { fontFamily: "Noto Sans CJK SC, WenQuanYi Zen Hei, sans-serif" },
      grid: { left: 48, right: 16, top: 48, bottom: 32, containLabel: true },
      legend: { type: "scroll", top: 0 },
      tooltip: { trigger: "item", renderMode: "richText",
        formatter: (p) => `${p.seriesName}\n${p.name}：${fmt(p.data && p.data.raw !== undefined ? p.data.raw : p.value)}` },
    }, extra);
  }

  function point(v) {
    // ECharts draws nothing for "-"; keep the published value for the tooltip.
    return { value: v === null ? "-" : v, raw: v };
  }

  // Counts chart: one series per row, stacked over the columns (periods or reasons).
  function countsOption(chart, horizontal) {
    const categories = chart.columns.map((c) => c.label);
    const series = chart.rows.map((r) => ({
      name: r.label, type: "bar", stack: "total", emphasis: { focus: "series" },
      data: r.values.map(point),
    }));
    if (!horizontal && chart.column_dimension === "period") {
      // The period totals stay readable when small groups hide the stacked cells.
      series.push({ name: "合计", type: "line", data: chart.column_totals.map(point), symbolSize: 6,
        lineStyle: { type: "dashed", color: "#475569" }, itemStyle: { color: "#475569" } });
    }
    const cat = { type: "category", data: categories };
    const val = { type: "value", minInterval: 1, name: "人" };
    return base({ series, xAxis: horizontal ? val : cat, yAxis: horizontal ? cat : val });
  }

  // Department x reason: departments on the axis, reasons stacked.
  function departmentReasonOption(chart) {
    const departments = chart.rows.map((r) => r.label);
    const series = chart.columns.map((c, j) => ({
      name: c.label, type: "bar", stack: "total", emphasis: { focus: "series" },
      data: chart.rows.map((r) => point(r.values[j])),
    }));
    return base({ series, yAxis: { type: "category", data: departments }, xAxis: { type: "value", minInterval: 1, name: "人" } });
  }

  // Metrics: notice-to-close days (bars) and the overdue share (line, right axis) per department.
  function metricsOption(chart) {
    const rows = chart.rows.concat([chart.overall]);
    const col = (key) => chart.columns.findIndex((c) => c.key === key);
    const pick = (key) => rows.map((r) => point(r.values[col(key)]));
    const share = col("letters_overdue_share");
    const rehire = col("rehire_rate");
    return base({
      xAxis: { type: "category", data: rows.map((r) => r.label) },
      yAxis: [{ type: "value", name: "天" }, { type: "value", name: "比例", min: 0, max: 1,
        axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } }],
      series: [
        { name: chart.columns[col("close_median_days")].label, type: "bar", data: pick("close_median_days") },
        { name: chart.columns[col("close_p90_days")].label, type: "bar", data: pick("close_p90_days") },
        { name: chart.columns[col("handover_median_days")].label, type: "bar", data: pick("handover_median_days") },
        { name: chart.columns[share].label, type: "line", yAxisIndex: 1, data: pick("letters_overdue_share"),
          tooltip: { formatter: (p) => `${p.seriesName}\n${p.name}：${fmt(p.data.raw, true)}` } },
        { name: chart.columns[rehire].label, type: "line", yAxisIndex: 1, data: pick("rehire_rate"),
          tooltip: { formatter: (p) => `${p.seriesName}\n${p.name}：${fmt(p.data.raw, true)}` } },
      ],
    });
  }

  function optionFor(chart) {
    if (chart.kind === "metrics") return metricsOption(chart);
    if (chart.id === "by_department_reason") return departmentReasonOption(chart);
    return countsOption(chart, false);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const holder = document.getElementById("analytics-data");
    if (!holder || typeof window.echarts === "undefined") return;
    const data = JSON.parse(holder.textContent);
    const instances = [];
    data.charts.forEach((chart) => {
      const el = document.getElementById("chart-" + chart.id);
      if (!el) return;
      const instance = window.echarts.init(el, null, { renderer: "canvas", locale: "ZH" });
      instance.setOption(optionFor(chart));
      el.dataset.rendered = "1";
      instances.push(instance);
    });
    window.addEventListener("resize", () => instances.forEach((i) => i.resize()));
    document.body.dataset.chartsRendered = String(instances.length);
  });
})();
