-- wrk script: POST /api/search with a different question on every request.
-- Bodies come from the file named by BODIES (one JSON body per line); each connection starts at
-- a different offset so concurrent connections do not send the same question at once.
local bodies = {}
local counter = 0

function init(args)
  local path = os.getenv("BODIES")
  for line in io.lines(path) do
    bodies[#bodies + 1] = line
  end
  counter = math.random(#bodies)
end

request = function()
  counter = counter % #bodies + 1
  return wrk.format("POST", "/api/search", {["Content-Type"] = "application/json"}, bodies[counter])
end

local errors = 0
response = function(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors < 5 then
      io.stderr:write("status " .. status .. ": " .. body .. "\n")
    end
  end
end
