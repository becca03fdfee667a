# The product page's Python example with only the import line and the client construction
# changed: the model runs in this process, no server or network involved.
# Run: MODELSERVICE_MODEL=/path/to/model.gguf python examples/product_page.py

import os

from modelservice import OpenAI

client = OpenAI(
    services=[{"name": "test", "access_name": "u-8105f7322477/test", "model": os.environ["MODELSERVICE_MODEL"]}],
    api_key="<Your API Key here>",
)

messages = [
    {"role": "user", "content": "hello!"},
    {"role": "user", "content": "Say this is test?"}
]

response = client.chat.completions.create(
    model="u-8105f7322477/test",
    messages=messages
)

content = response.choices[0].message.content

print(content)
