// A tag the demo shop holds back until the visitor allows recommendations.
document.getElementById("recommendations").textContent = "Because you looked at linen shirts: a linen scarf, linen trousers.";
