/* Dashboard charts: reads its data from the <script type="application/json" id="dashboard-data"> block. */
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);

  var rateCanvas = document.getElementById("chart-rates");
  if (rateCanvas) {
    new Chart(rateCanvas, {
      data: {
        labels: data.labels,
        datasets: [
          { type: "bar", label: data.text.rate, data: data.rates, backgroundColor: "rgba(13, 110, 253, 0.6)" },
          { type: "line", label: data.text.target + " " + data.target + "%",
            data: data.labels.map(function () { return data.target; }),
            borderColor: "rgba(220, 53, 69, 0.9)", borderDash: [6, 4], pointRadius: 0, fill: false }
        ]
      },
      options: { responsive: true, scales: { y: { beginAtZero: true, max: 100 } } }
    });
  }

  var countCanvas = document.getElementById("chart-counts");
  if (countCanvas) {
    new Chart(countCanvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: data.text.posted, data: data.posted, backgroundColor: "rgba(108, 117, 125, 0.6)" },
          { label: data.text.docked, data: data.docked, backgroundColor: "rgba(25, 135, 84, 0.7)" }
        ]
      },
      options: { responsive: true, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }

  var outcomeCanvas = document.getElementById("chart-outcomes");
  if (outcomeCanvas) {
    new Chart(outcomeCanvas, {
      type: "doughnut",
      data: { labels: data.outcomeLabels, datasets: [{ data: data.outcomes, backgroundColor: data.outcomeColours }] },
      options: { responsive: true, plugins: { legend: { position: "right" } } }
    });
  }
})();
